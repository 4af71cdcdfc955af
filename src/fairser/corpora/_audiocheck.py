"""Sample-level audio checks over a whole corpus, cached per file.

:func:`check_files` runs :func:`fairser.audio.check_audio` (a full decode: silent, clipped,
out-of-range and truncated audio) on many files, in threads (libsndfile and numpy release the
GIL), and caches each verdict in ``<cache>/audio-checks-v1.sqlite``. A file's cache key is its
identity on disk, not its content hash: resolved path, size, modification time (ns) and inode,
so a rescan of an unchanged corpus decodes nothing, and a replaced or edited file is decoded
again. Hashing the content would read every byte on each scan, most of the cost of decoding.

Header-level checks (missing, unreadable, empty, truncated WAV/FLAC headers) do not come here:
:func:`fairser.audio.audio_info` makes them on every scan.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext

from fairser._paths import default_cache_dir
from fairser.audio import check_audio
from fairser.errors import AudioError

__all__ = ["check_files"]

#: Bump when check_audio's rules change (part of the cache file name).
CHECK_VERSION = 1


def _key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def _check(path: str) -> list[tuple[str, str]]:
    try:
        return check_audio(path)
    except AudioError as exc:
        return [(getattr(exc, "kind", "unreadable-audio"), getattr(exc, "reason", str(exc)))]


def _open_cache() -> sqlite3.Connection | None:
    try:
        folder = default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(folder / f"audio-checks-v{CHECK_VERSION}.sqlite", timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS checks (key TEXT PRIMARY KEY, verdict TEXT)")
        return db
    except (OSError, sqlite3.Error):
        return None  # no writable cache: check everything, remember nothing


def check_files(paths: Sequence[str], *, progress: bool = False, workers: int | None = None,
                cache: bool = True) -> dict[str, list[tuple[str, str]]]:
    """Return ``{path: [(kind, reason), ...]}`` for every file whose samples look wrong.

    Parameters
    ----------
    paths : sequence of str
        Audio files (already known to have a readable header).
    progress : bool, default=False
        Show a rich progress bar on stderr (terminals only).
    workers : int, optional
        Decoding threads (default: the CPU count, at most 8).
    cache : bool, default=True
        Read and store verdicts in the cache (see the module docstring).

    Returns
    -------
    dict
        Only files with findings appear.
    """
    keys = {p: _key(p) for p in paths}
    db = _open_cache() if cache else None
    verdicts: dict[str, list[tuple[str, str]]] = {}
    todo: list[str] = []
    with closing(db) if db is not None else nullcontext():
        known: dict[str, list] = {}
        if db is not None:
            wanted = [k for k in keys.values() if k]
            for i in range(0, len(wanted), 900):
                chunk = wanted[i:i + 900]
                sql = f"SELECT key, verdict FROM checks WHERE key IN ({','.join('?' * len(chunk))})"
                known.update((k, json.loads(v)) for k, v in db.execute(sql, chunk))
        for p in paths:
            if keys[p] in known:
                verdicts[p] = [tuple(x) for x in known[keys[p]]]
            else:
                todo.append(p)
        n_workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = pool.map(_check, todo)
            for p, found in zip(todo, _bar(results, len(todo), progress), strict=True):
                verdicts[p] = found
        if db is not None and todo:
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO checks VALUES (?, ?)",
                                   [(keys[p], json.dumps(verdicts[p])) for p in todo if keys[p]])
            except sqlite3.Error:
                pass  # a read-only or busy cache only costs a re-check next time
    return {p: v for p, v in verdicts.items() if v}


def _bar(results, total: int, enabled: bool):
    if not enabled or not total:
        yield from results
        return
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
    if not console.is_terminal:
        yield from results
        return
    yield from track(results, total=total, description=f"checking the samples of {total} files",
                     transient=True, console=console)
