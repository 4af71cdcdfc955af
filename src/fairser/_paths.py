"""Default locations on disk (no global state: each call reads the environment)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Return the cache root: ``$FAIRSER_CACHE`` if set, else ``~/.cache/fairser``."""
    env = os.environ.get("FAIRSER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fairser"
