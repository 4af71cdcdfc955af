"""`fairser run`, `fairser demo`, `fairser predict` (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the experiment commands to ``app``."""
