"""Atomic file writes: the one implementation every layer uses.

A file is written to a temporary name in the destination folder and published with
:func:`os.replace`, so a reader (or a process killed mid-write) sees either the old file or the
complete new one, never a torn one. Published files get ordinary permissions (``0666 & ~umask``),
not the ``0600`` that :func:`tempfile.mkstemp` creates.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; publish it there when the block succeeds.

    Parameters
    ----------
    path : str or Path
        Final destination. Its folder is created if missing.
    suffix : str, default ".tmp"
        Ending of the temporary name (some writers, e.g. ``np.savez``, insist on their own).

    Yields
    ------
    Path
        Where the block must write. On any exception it is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; with ``fsync`` also flush it to the disk first."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
