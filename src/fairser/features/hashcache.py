"""SHA-256 of the audio files, remembered so that a cached run does not re-read every file.

An entry of the table is reused only when path, size, modification time, change time *and*
inode all match (any rewrite of a file, even one that restores its mtime, updates its ctime), so
a cached run of a RAVDESS-size manifest costs a ``stat`` and a dictionary lookup per file. The
table is SQLite (``<cache>/features/audio-hashes.sqlite``), which keeps it consistent under
concurrent runs (several shards of one extraction, several users of one cache) and kills.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fairser.errors import FeatureError

__all__ = ["HashCache", "file_sha256"]


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class _Stat:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


def _stat(path: str) -> _Stat:
    st = os.stat(path)
    return _Stat(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class HashCache:
    """SHA-256 of audio files, remembered per (path, size, mtime, ctime, inode).

    Parameters
    ----------
    root : Path
        The ``features`` folder; the table lives in ``audio-hashes.sqlite`` inside it.
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "audio-hashes.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60.0)
        con.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, sha256 TEXT)"
        )
        return con

    def hash_files(self, paths: Iterable[str], *, on_start: Callable[[int], None] | None = None,
                   on_hashed: Callable[[int], None] | None = None,
                   ) -> dict[str, str | FeatureError]:
        """Content hash of each path, or the error that prevented reading it.

        Parameters
        ----------
        paths : iterable of str
            Absolute paths (duplicates allowed).
        on_start : callable, optional
            ``on_start(n_files)`` once the number of files that must be read is known.
        on_hashed : callable, optional
            ``on_hashed(n_bytes)`` after each file actually read (for progress).

        Returns
        -------
        dict of str to (str or FeatureError)
        """
        unique = list(dict.fromkeys(paths))
        stats: dict[str, _Stat] = {}
        out: dict[str, str | FeatureError] = {}
        for p in unique:
            try:
                stats[p] = _stat(p)
            except OSError as exc:
                out[p] = FeatureError(
                    f"{p}: cannot read the audio file ({exc.strerror or exc}); "
                    f"check the path column or the corpus root")
        try:
            con = self._connect()
        except sqlite3.Error:
            con = None  # unusable cache table: hash everything, remember nothing
        known: dict[str, tuple] = {}
        if con is not None:
            try:
                rows = con.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM hashes"
                ).fetchall() if len(stats) > 500 else [
                    r for p in stats for r in con.execute(
                        "SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM hashes "
                        "WHERE path = ?", (p,))
                ]
                known = {r[0]: r[1:] for r in rows}
            except sqlite3.Error:
                known = {}
        stale: list[str] = []
        for p, st in stats.items():
            row = known.get(p)
            if row is not None and tuple(row[:4]) == (st.size, st.mtime_ns, st.ctime_ns,
                                                       st.inode):
                out[p] = row[4]
            else:
                stale.append(p)
        if on_start is not None:
            on_start(len(stale))
        fresh: list[tuple] = []
        try:
            for p in stale:
                st = stats[p]
                try:
                    digest = file_sha256(p)
                except OSError as exc:
                    out[p] = FeatureError(
                        f"{p}: cannot read the audio file ({exc.strerror or exc}); "
                        f"check its permissions")
                    continue
                out[p] = digest
                fresh.append((p, st.size, st.mtime_ns, st.ctime_ns, st.inode, digest))
                if len(fresh) >= 1000:  # keep long hashing runs resumable too
                    self._remember(con, fresh)
                    fresh = []
                if on_hashed is not None:
                    on_hashed(st.size)
            self._remember(con, fresh)
        finally:
            if con is not None:
                con.close()
        return out

    @staticmethod
    def _remember(con: sqlite3.Connection | None, rows: list[tuple]) -> None:
        if con is None or not rows:
            return
        try:
            with con:
                con.executemany("INSERT OR REPLACE INTO hashes VALUES (?,?,?,?,?,?)", rows)
        except sqlite3.Error:
            pass  # a read-only or locked cache only costs re-hashing next time
