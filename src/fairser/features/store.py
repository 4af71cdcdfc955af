"""The content-addressed feature store.

Layout under the cache root (``$FAIRSER_CACHE`` or ``~/.cache/fairser``)::

    features/
      audio-hashes.sqlite              path+size+mtime+ctime+inode -> SHA-256 of the file bytes
      <frontend>-<config hash[:16]>/
        frontend.json                  the frontend configuration hashed into the folder name
        ab/<audio sha256>.npy          one (L, T, D) float16 array per distinct audio content
        ab/<audio sha256>.err          deterministic failure of that content (reason, JSON)
        tmp/                           in-flight writes, renamed into place when complete

Why one ``.npy`` per utterance (and not shards, HDF5 or zarr):

* **Memory-mapped reads with zero copies.** ``np.load(path, mmap_mode="r")`` maps the file; a
  training loop touching one utterance pages in only that utterance, from any number of
  DataLoader workers, with no open handles to share. npy is numpy's own format: no dependency.
* **Atomic, resumable writes.** Each entry is written to ``tmp/`` and published with
  ``os.replace`` (atomic on POSIX): a process killed at any instant leaves either no entry or a
  complete one, never a torn one, and nothing else has to be rewritten (shards or an HDF5 file
  would have to be rewritten or journaled; HDF5 is corrupted by a kill mid-write).
* **No index to keep consistent.** The file name *is* the key (SHA-256 of the audio bytes inside
  a folder named by the hash of the frontend configuration), so existence is the index: a rerun
  computes exactly the missing files, a changed audio file or setting gets a new key, and stale
  features can never be served.
* Cost: one small file per utterance (1,440 for RAVDESS); the two-character fan-out folders
  keep directories small for corpora of 100k+ utterances.

The audio hash cache avoids re-reading every audio file on every call: an entry is reused only
when path, size, modification time, change time *and* inode all match (any rewrite of a file,
even one that restores its mtime, updates its ctime), so a cached run of a RAVDESS-size manifest
costs a ``stat`` and a dictionary lookup per file. SQLite keeps that table consistent under
concurrent runs and kills (transactions).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairser._io import atomic_write_text
from fairser.errors import FeatureError

__all__ = ["FeatureStore", "HashCache", "atomic_write_text", "entry_shape", "features_root",
           "file_sha256", "read_entry"]

_TMP_MAX_AGE_S = 3600.0


def features_root(cache_dir: str | Path | None) -> Path:
    """``<cache>/features`` for a cache root (default :func:`fairser._paths.default_cache_dir`)."""
    from fairser._paths import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "features"


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


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:60] or "frontend"


class FeatureStore:
    """Entries of one frontend configuration: ``(L, T, D)`` arrays keyed by audio SHA-256.

    Parameters
    ----------
    root : Path
        The ``features`` folder of the cache.
    name : str
        Frontend name (readable part of the folder name).
    config : dict
        Frontend configuration; its hash names the folder.
    dtype : str, default="float16"
        Storage dtype.
    """

    def __init__(self, root: Path, name: str, config: dict[str, Any], *,
                 dtype: str = "float16") -> None:
        from fairser.features.base import config_hash

        self.config = {**config, "store_dtype": dtype}
        self.hash = config_hash(self.config)
        self.folder = Path(root) / f"{_slug(name)}-{self.hash[:16]}"
        self.dtype = np.dtype(dtype)
        self._tmp = self.folder / "tmp"

    # -- layout ---------------------------------------------------------------------------
    def path(self, audio_hash: str) -> Path:
        """File of the entry for ``audio_hash`` (may not exist)."""
        return self.folder / audio_hash[:2] / f"{audio_hash}.npy"

    def error_path(self, audio_hash: str) -> Path:
        """File recording a deterministic failure for ``audio_hash``."""
        return self.folder / audio_hash[:2] / f"{audio_hash}.err"

    def has(self, audio_hash: str) -> bool:
        """Whether a complete entry exists."""
        return self.path(audio_hash).is_file()

    def error(self, audio_hash: str) -> str | None:
        """Recorded failure reason, if any."""
        p = self.error_path(audio_hash)
        if not p.is_file():
            return None
        try:
            return str(json.loads(p.read_text(encoding="utf-8"))["reason"])
        except (OSError, ValueError, KeyError):
            return None

    # -- writing ----------------------------------------------------------------------------
    def open(self) -> FeatureStore:
        """Create the folder, record the configuration, clear stale temp files; returns self."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "frontend.json"
        if not meta.is_file():
            self._atomic_bytes(meta, json.dumps(self.config, indent=2, sort_keys=True,
                                                default=str).encode("utf-8"))
        now = time.time()
        for entry in os.scandir(self._tmp):
            try:  # temp files of killed runs; recent ones may belong to a live process
                if now - entry.stat().st_mtime > _TMP_MAX_AGE_S:
                    os.unlink(entry.path)
            except OSError:
                pass
        return self

    def _atomic_bytes(self, target: Path, data: bytes) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, audio_hash: str, features: np.ndarray) -> Path:
        """Store ``features`` (``(L, T, D)``) atomically; returns the entry's path.

        Raises
        ------
        FeatureError
            The array is not 3-D or holds values that are not finite in the storage dtype.
        """
        arr = np.asarray(features)
        if arr.ndim != 3:
            raise FeatureError(f"frontend returned shape {arr.shape}; expected (L, T, D)")
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.ascontiguousarray(arr.astype(self.dtype, copy=False))
        if not np.isfinite(arr).all():
            raise FeatureError(
                f"features are NaN or overflow {self.dtype} (max |x| "
                f"{np.nanmax(np.abs(np.asarray(features, dtype=np.float64))):.3g}); "
                f"extract with dtype='float32'")
        target = self.path(audio_hash)
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.error_path(audio_hash).unlink(missing_ok=True)
        return target

    def put_error(self, audio_hash: str, reason: str) -> None:
        """Record that ``audio_hash`` fails deterministically with ``reason``."""
        self._atomic_bytes(self.error_path(audio_hash),
                           json.dumps({"reason": reason}).encode("utf-8"))

    def clear_error(self, audio_hash: str) -> None:
        """Forget a recorded failure (to retry it)."""
        self.error_path(audio_hash).unlink(missing_ok=True)


def read_entry(path: Path, *, mmap: bool = True) -> np.ndarray:
    """Memory-mapped (read-only) ``(L, T, D)`` array of a store entry.

    Raises
    ------
    FeatureError
        The file is missing or not a valid npy array.
    """
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureError(
            f"{path}: unreadable feature entry ({exc}); delete the file and rerun "
            f"`fairser features extract`") from None


def entry_shape(path: Path) -> tuple[int, ...]:
    """Shape of a store entry from its npy header, without reading the data."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, _ = read(fh)
        return tuple(shape)
    except (OSError, ValueError) as exc:
        raise FeatureError(
            f"{path}: unreadable feature entry ({exc}); delete the file and rerun "
            f"`fairser features extract`") from None
