"""The one place the CLI makes its rich consoles.

Messages never wrap mid-token: ``soft_wrap=True`` keeps one logical line (a path, a number, a
command to copy) on one line in terminals of any width, in logs and in pipes, whatever
``COLUMNS`` says. Tables still fold to the console width.
"""

from __future__ import annotations

from rich.console import Console


def make_console(*, stderr: bool = False) -> Console:
    """A console for CLI output (stdout, or stderr with ``stderr=True``) that never wraps lines."""
    return Console(stderr=stderr, soft_wrap=True)
