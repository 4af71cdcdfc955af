"""The ``fairser`` command line: parses, calls the Python API, prints. No logic of its own.

Each command group lives in its own module; this file only assembles them and turns a
:class:`fairser.errors.FairserError` into one red line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fairser`` script."""
    err = Console(stderr=True)
    try:
        app(args=argv, prog_name="fairser")
    except FairserError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]; finished work is kept and a rerun resumes it")
        sys.exit(130)
