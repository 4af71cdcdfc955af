"""Provenance of a run folder: what ran, with which software, and every invocation.

``meta.json`` records the command, the versions of Python, the platform and the main
packages, the git commit of a source checkout (``+dirty`` with local changes under ``src``),
wall and fit time, and the list of every invocation on the folder (a resumed grid keeps the
history of its earlier calls).
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["build_meta", "git_commit", "versions"]

_PACKAGES = ("fairser", "torch", "transformers", "numpy", "pandas", "scikit-learn",
             "opensmile", "fairlearn", "ray")


def git_commit() -> str | None:
    """``HEAD`` of the source checkout (``+dirty`` with local changes), if it is one."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head.strip() + ("+dirty" if dirty.strip() else "")


def versions() -> dict[str, str]:
    """Python, platform, git commit and the installed versions of the main packages."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    commit = git_commit()
    if commit:
        out["git"] = commit
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _previous_invocations(path: Path) -> list[dict[str, Any]]:
    """The ``invocations`` list of an earlier meta.json (empty if none or unreadable)."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = previous.get("invocations") if isinstance(previous, dict) else None
    return list(found) if isinstance(found, list) else []


def build_meta(path: Path, *, fields: dict[str, Any], trained: int, skipped: int
               ) -> dict[str, Any]:
    """The contents of ``meta.json`` at ``path``: ``fields`` plus versions and invocations.

    Parameters
    ----------
    path : Path
        Where meta.json is (its earlier invocations are kept).
    fields : dict
        ``name``, ``command``, ``wall_s`` and the other run facts.
    trained, skipped : int
        Fits trained and reused by this invocation.
    """
    meta = {**fields, "versions": versions(),
            "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    meta["invocations"] = _previous_invocations(path) + [
        {"command": meta.get("command"), "wall_s": meta.get("wall_s"), "trained": trained,
         "skipped": skipped, "finished_utc": meta["finished_utc"],
         **({"executor": meta["executor"]} if "executor" in meta else {})}]
    return meta
