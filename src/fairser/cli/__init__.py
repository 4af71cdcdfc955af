"""The ``fairser`` command line: parses, calls the Python API, prints. No logic of its own.

Each command group lives in its own module; this file only assembles them and turns a
:class:`fairser.errors.FairserError` (or an ``OSError`` about a path: a file where a folder is
needed, a folder where a file is, no permission) into one red line and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from fairser.cli._console import make_console
from fairser.errors import FairserError

app = typer.Typer(
    name="fairser",
    help="Train and audit speech emotion recognition models for gender fairness across corpora.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from fairser.cli import corpus, experiment, features, train

    app.add_typer(corpus.app, name="corpus")
    app.add_typer(features.app, name="features")
    train.register(app)
    experiment.register(app)


_register()


def _os_fix(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file; pass a file path"
    if isinstance(exc, NotADirectoryError) or (
            isinstance(exc, FileExistsError) and not Path(exc.filename or "").is_dir()):
        return (f"{exc.strerror} (a file stands where a folder is needed); pass a folder path "
                "or move the file away")
    if isinstance(exc, PermissionError):
        return "permission denied; choose a location you can write to"
    return f"{exc.strerror}; check the path"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fairser`` script."""
    err = make_console(stderr=True)
    try:
        app(args=argv, prog_name="fairser")
    except FairserError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A path given on the command line or in a config that is of the wrong kind (a file
        # where a folder is needed, or the reverse) or not writable: one line, not a traceback.
        name = exc.filename2 or exc.filename
        if name is None:
            raise
        err.print(f"[bold red]error:[/] {escape(f'{name}: {_os_fix(exc)}')}", highlight=False,
                  soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]; finished work is kept and a rerun resumes it")
        sys.exit(130)
