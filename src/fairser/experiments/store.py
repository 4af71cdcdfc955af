"""The results store of a run folder: one JSON record per finished run, written atomically.

Layout of a run folder (``runs/NAME`` by default)::

    config.json              the resolved experiment config
    records/RUN_ID.json      one finished run: its spec, config hash, result rows, per-speaker rows
    predictions/RUN_ID.parquet  its per-utterance predictions (for paired tests)
    .lock                    held (flock) while a run writes to the folder
    models/RUN_ID/           the saved model (``model/``) and ``run.json`` (what predict needs)
    embeddings/RUN_ID.npz    a sample of embeddings for the report's projection
    results.parquet/.csv     every row of the current grid (rewritten at the end of a run)
    predictions.parquet      every per-utterance prediction of the current grid
    comparisons.csv          paired bootstrap tests of every method against source-only
    gap_null.csv             each method's gaps against speaker reassignments of gender
    per_speaker.csv          per-speaker figures (CASIA has four speakers: read them)
    table.md, report.html    the paper-layout table and the report
    meta.json                command, versions, wall time

``RUN_ID`` is ``KEY__HASH``: the run's grid coordinates and the hash of every option that
changes its result, so a rerun skips exactly the runs whose record exists, and a changed option
re-runs only what it affects. A record is written last, after the model, so its presence means
the run is complete (``status: ok``) or failed on its own (``status: failed``, tried again by a
rerun). :class:`RunLock` keeps two runs from writing to one folder at once.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairser._io import atomic_path, atomic_write_text
from fairser.errors import FairserError

try:  # POSIX; elsewhere the folder is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ResultFolderBusy", "ResultsStore", "RunLock", "atomic_write_frame", "safe_name"]


class ResultFolderBusy(FairserError):
    """Another process is writing to the run folder (its lock is held)."""

#: The file that marks a complete model folder (what ``predict`` reads).
_MODEL_INFO = "run.json"

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._=+-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def atomic_write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet or CSV (by suffix) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"unsupported table format {path.suffix}")
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    if isinstance(value, Path):
        return str(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


class ResultsStore:
    """Finished-run records of one run folder.

    Parameters
    ----------
    root : Path
        The run folder; created on first write.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def records_dir(self) -> Path:
        """Folder of the per-run JSON records."""
        return self.root / "records"

    def record_path(self, run_id: str) -> Path:
        """Path of the record of ``run_id``."""
        return self.records_dir / f"{safe_name(run_id)}.json"

    def model_dir(self, run_id: str) -> Path:
        """Folder of the saved model of ``run_id``."""
        return self.root / "models" / safe_name(run_id)

    def embeddings_path(self, run_id: str) -> Path:
        """Path of the embedding sample of ``run_id``."""
        return self.root / "embeddings" / f"{safe_name(run_id)}.npz"

    def predictions_path(self, run_id: str) -> Path:
        """Path of the per-utterance predictions of ``run_id``."""
        return self.root / "predictions" / f"{safe_name(run_id)}.parquet"

    def save_predictions(self, run_id: str, df: pd.DataFrame) -> Path:
        """Write the per-utterance predictions of ``run_id`` atomically."""
        path = self.predictions_path(run_id)
        atomic_write_frame(df, path)
        return path

    def predictions(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """Concatenated predictions of the given runs (those that stored any)."""
        parts = [pd.read_parquet(self.predictions_path(r)) for r in run_ids
                 if self.predictions_path(r).is_file()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def status(self, run_id: str) -> str | None:
        """``ok`` or ``failed`` for a stored record; None when there is none (or it is torn)."""
        path = self.record_path(run_id)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict):
            return None
        return "failed" if record.get("status") == "failed" else "ok"

    def has(self, run_id: str) -> bool:
        """True when ``run_id`` has a record (finished, or failed) that parses."""
        return self.status(run_id) is not None

    def finished(self, run_id: str) -> bool:
        """True when ``run_id`` finished successfully (a failed fit is tried again)."""
        return self.status(run_id) == "ok"

    def save(self, run_id: str, record: dict[str, Any]) -> Path:
        """Write ``record`` for ``run_id`` atomically; NaN becomes ``null``."""
        path = self.record_path(run_id)
        text = json.dumps(_jsonable({**record, "run_id": run_id}), indent=1, allow_nan=False)
        atomic_write_text(path, text)
        return path

    def load(self, run_id: str) -> dict[str, Any]:
        """Read the record of ``run_id``.

        Raises
        ------
        FairserError
            If the record is missing or unreadable (delete it to re-run that run).
        """
        path = self.record_path(run_id)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FairserError(f"{path}: run record unreadable ({type(exc).__name__}); delete "
                               "the file and rerun to recompute that run") from exc

    def save_model(self, run_id: str, model: Any, info: dict[str, Any]) -> Path:
        """Save ``model`` (``model.save(dir)``) into ``models/RUN_ID/model`` and ``info`` as
        ``run.json`` beside it.

        ``run.json`` is removed first and written last (atomically), so a model folder counts
        (for ``predict``) only once it is complete; a save that raises removes the folder.
        """
        final = self.model_dir(run_id)
        (final / _MODEL_INFO).unlink(missing_ok=True)
        try:
            if (final / "model").exists():
                shutil.rmtree(final / "model")
            model.save(final / "model")
            atomic_write_text(final / _MODEL_INFO, json.dumps(_jsonable(info), indent=1))
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return final

    def save_embeddings(self, run_id: str, **arrays: np.ndarray) -> Path:
        """Save named arrays as a compressed ``.npz`` atomically."""
        path = self.embeddings_path(run_id)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)
        return path

    def rows(self, run_ids: Iterable[str], *, field: str = "rows") -> pd.DataFrame:
        """Concatenate the ``field`` rows of the given finished runs into one DataFrame."""
        out: list[dict[str, Any]] = []
        for run_id in run_ids:
            if self.has(run_id):
                out.extend(self.load(run_id).get(field, []))
        return pd.DataFrame(out)


class RunLock:
    """An OS-level lock on a run folder, held while a run writes to it.

    ``fcntl.flock`` on ``<folder>/.lock``: the kernel releases it when the holder exits or
    crashes, so a lock file left behind never blocks a later run. The file records the
    holder's pid and command, for the message of the process that finds it taken.

    Parameters
    ----------
    folder : Path
        The run folder (created if missing).
    command : str, optional
        What holds it (shown to a second process).

    Raises
    ------
    ResultFolderBusy
        On entering, when another process holds the lock.
    """

    def __init__(self, folder: Path | str, *, command: str = "") -> None:
        self.path = Path(folder) / ".lock"
        self.command = command
        self._fh: Any = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until __exit__
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = " ".join(fh.read().split())[:200] or "another process"
                fh.close()
                raise ResultFolderBusy(
                    f"{self.path.parent}: another run is writing to this folder ({holder}); "
                    "wait for it to finish or pass another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {self.command}".strip())
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None
