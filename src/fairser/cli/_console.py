"""The one place the CLI makes its rich consoles and tables.

Messages never wrap mid-token: ``soft_wrap=True`` keeps one logical line (a path, a number, a
command to copy) on one line in terminals of any width, in logs and in pipes, whatever
``COLUMNS`` says. Tables still fold to the console width, but never hide text: every cell folds
instead of ending in an ellipsis, and the columns a user copies from (a corpus kind, a problem
kind) never wrap at all; the other columns give way first.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def make_console(*, stderr: bool = False) -> Console:
    """A console for CLI output (stdout, or stderr with ``stderr=True``) that never wraps lines."""
    return Console(stderr=stderr, soft_wrap=True)


def make_table(*headers: str, keep: Sequence[str] = (), **options: Any) -> Table:
    """A rich table whose cells fold rather than lose text; ``keep`` columns never break.

    Parameters
    ----------
    *headers : str
        Column headers, in order.
    keep : sequence of str, default=()
        Headers of the columns whose cells must stay whole (names to copy): never wrapped.
    **options
        Passed to :class:`rich.table.Table` (``title``, ``show_lines``, ...).
    """
    unknown = set(keep) - set(headers)
    if unknown:
        raise ValueError(f"make_table: keep names unknown columns {sorted(unknown)}")
    table = Table(**options)
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=header in keep)
    return table


@contextmanager
def config_warnings(console: Console) -> Iterator[None]:
    """Print a config's warnings as one yellow ``warning:`` line each.

    :class:`fairser.models.PositionalLeakWarning` (``n_layers: 0`` with position encodings),
    which the experiment config check (``fairser.experiments.planning.check_config``) and
    ``fairser train``'s config loading warn with; any other warning is shown as Python shows it.
    """
    from fairser.models.spec_checks import PositionalLeakWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, PositionalLeakWarning):
                console.print(f"[yellow]warning[/]: {escape(str(message))}", highlight=False)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("always", PositionalLeakWarning)
        yield
