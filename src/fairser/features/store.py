"""The content-addressed feature store: layout, atomic writes, damage checks, the run log.

Layout under the cache root (``$FAIRSER_CACHE`` or ``~/.cache/fairser``)::

    features/
      audio-hashes.sqlite              path+size+mtime+ctime+inode -> SHA-256 of the file bytes
      <frontend>-<config hash[:16]>/
        frontend.json                  the frontend configuration hashed into the folder name
        extractions.jsonl              one line per run that computed entries: device, precision,
                                       host, shard, counts (what produced the entries)
        ab/<audio sha256>.npy          one (L, T, D) array per distinct audio content
        ab/<audio sha256>.err          deterministic failure of that content (reason, JSON)
        tmp/                           in-flight writes, renamed into place when complete

Why one ``.npy`` per utterance (and not shards, HDF5 or zarr):

* **Memory-mapped reads with zero copies.** A training loop touching one utterance pages in only
  that utterance, from any number of DataLoader workers, with no open handles to share. npy is
  numpy's own format: no dependency.
* **Atomic, resumable writes.** Each entry is written to ``tmp/`` and published with
  ``os.replace`` (atomic on POSIX): a process killed at any instant leaves either no entry or a
  complete one, never a torn one, and nothing else has to be rewritten. In-flight files live in
  one ``tmp/`` folder (not beside their targets) so a killed run's leftovers are found and
  cleared without scanning the fan-out folders.
* **No index to keep consistent.** The file name *is* the key (SHA-256 of the audio bytes inside
  a folder named by the hash of the frontend configuration), so existence is the index: a rerun
  computes exactly the missing files, a changed audio file or setting gets a new key, and stale
  features can never be served. Several processes (shards of one extraction, on one machine or
  many sharing the folder) fill one store with no coordination beyond this: two writers of one
  entry write the same content, and the last ``os.replace`` wins.
* Cost: one small file per utterance (1,440 for RAVDESS); the two-character fan-out folders
  keep directories small for corpora of 100k+ utterances.

What an entry must look like (``L``, ``D``, dtype) is an :class:`~fairser.features.entry.EntrySpec`;
:meth:`FeatureStore.problem` checks an entry against it (see :mod:`fairser.features.entry` for
the cheap and full checks) so damaged entries are recomputed rather than served.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fairser._hashing import config_hash
from fairser.errors import FeatureError
from fairser.features.entry import EntrySpec, entry_problem, read_entry

__all__ = ["FeatureStore", "features_root"]

_TMP_MAX_AGE_S = 3600.0


def features_root(cache_dir: str | Path | None) -> Path:
    """``<cache>/features`` for a cache root (default :func:`fairser._paths.default_cache_dir`)."""
    from fairser._paths import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "features"


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
    n_layers, dim : int, optional
        ``L`` and ``D`` of every entry (checked on write and read when given).
    """

    def __init__(self, root: Path, name: str, config: dict[str, Any], *,
                 dtype: str = "float16", n_layers: int | None = None,
                 dim: int | None = None) -> None:
        self.config = {**config, "store_dtype": dtype}
        self.hash = config_hash(self.config)
        self.folder = Path(root) / f"{_slug(name)}-{self.hash[:16]}"
        self.dtype = np.dtype(dtype)
        self.spec = EntrySpec(n_layers=n_layers, dim=dim, dtype=self.dtype.name)
        self._tmp = self.folder / "tmp"

    # -- layout ---------------------------------------------------------------------------
    def path(self, audio_hash: str) -> Path:
        """File of the entry for ``audio_hash`` (may not exist)."""
        return self.folder / audio_hash[:2] / f"{audio_hash}.npy"

    def error_path(self, audio_hash: str) -> Path:
        """File recording a deterministic failure for ``audio_hash``."""
        return self.folder / audio_hash[:2] / f"{audio_hash}.err"

    def has(self, audio_hash: str) -> bool:
        """Whether an entry file exists (see :meth:`problem` for whether it is intact)."""
        return self.path(audio_hash).is_file()

    def problem(self, audio_hash: str, *, full: bool = False) -> str | None:
        """``None`` if the entry is intact, ``"missing"`` if absent, else why it is damaged.

        ``full`` reads every value (``--verify``); otherwise the cheap checks of
        :mod:`fairser.features.entry` run (header, size, shape, dtype, a sample of values).
        """
        return entry_problem(self.path(audio_hash), self.spec, full=full)

    def read(self, audio_hash: str) -> np.ndarray:
        """The checked, memory-mapped entry of ``audio_hash`` (a one-line error if damaged)."""
        return read_entry(self.path(audio_hash), self.spec)

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
        spec = self.spec
        if arr.ndim != 3 or arr.shape[1] < 1 or (
                spec.n_layers is not None and arr.shape[0] != spec.n_layers) or (
                spec.dim is not None and arr.shape[2] != spec.dim):
            raise FeatureError(
                f"frontend returned shape {arr.shape}; expected (L, T, D) = "
                f"({spec.n_layers or 'L'}, T>=1, {spec.dim or 'D'})")
        source = np.asarray(features, dtype=np.float64)
        if not np.isfinite(source).all():
            raise FeatureError("the frontend produced NaN or infinite features; check the audio "
                               "(silence or clipping) or the frontend options")
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.ascontiguousarray(arr.astype(self.dtype, copy=False))
        if not np.isfinite(arr).all():
            raise FeatureError(
                f"features overflow {self.dtype} (max |x| {np.abs(source).max():.3g}); "
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

    def record_run(self, meta: dict[str, Any]) -> None:
        """Append one line describing a run that wrote entries to ``extractions.jsonl``.

        The line (device, precision, shard, counts, host, time) is written with one
        ``O_APPEND`` write, so concurrent shards never interleave within a line. A failure to
        write the log (read-only cache) is ignored: the entries are what matters.
        """
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "host": socket.gethostname(), "pid": os.getpid(), **meta},
                          sort_keys=True, default=str) + "\n"
        try:
            fd = os.open(self.folder / "extractions.jsonl",
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            pass

    def runs(self) -> list[dict[str, Any]]:
        """The lines of ``extractions.jsonl`` (unreadable lines skipped)."""
        try:
            text = (self.folder / "extractions.jsonl").read_text(encoding="utf-8")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
