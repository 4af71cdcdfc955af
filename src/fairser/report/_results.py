"""The results table the report reads: checks, run status, notes and seed aggregation.

A results DataFrame has one row per run and evaluated corpus. Required columns: ``method``,
``emotion``, ``seed``, ``corpus``, ``role`` (``source`` or ``target``) and the metrics a
function needs (``uar``, ``dsp``, ``deo_max`` ...). Optional columns the report understands:

- ``target`` and ``condition``: split the tables and plots into blocks (a source evaluated
  under two target corpora or two source conditions is two blocks);
- ``sweep`` (a label such as ``alpha=0.5,beta=1``, empty without a sweep) and ``sweep_<key>``:
  a sweep point is its own row next to its method, and enables the trade-off figure;
- ``<metric>_lo`` / ``<metric>_hi``: speaker-bootstrap interval bounds of one run;
- ``<metric>_note``: why the metric is undefined in that row ("" or missing when defined; see
  :func:`fairser.metrics.evaluate_predictions`): such a value is shown as "n/a" with the
  reason, never as a number;
- ``status`` and ``reason``: a run whose status is not ``ok`` failed; its rows are listed with
  the reason and left out of every mean and figure (missing or empty status means ``ok``);
- ``confidence``: the coverage of the intervals;
- ``gc_acc``, ``probe``, ``probe_mlp``, ``probe_input``: gender detection; ``probe_protocol``
  says how ``probe``/``probe_mlp`` were measured (``plain``, or ``cross-fitted`` through the
  model's embedding eraser refitted per probe fold without the probe's speakers; marked * in
  the report).

Means over seeds never hide a gap: a metric undefined or missing in some of the runs it
averages is undefined in the mean, with the count and the reason (:func:`aggregate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairser._io import atomic_write_bytes
from fairser.errors import FairserError
from fairser.metrics import NOTE_SUFFIX

__all__ = [
    "KEY_COLUMNS",
    "NOTE_SUFFIX",
    "ReportError",
    "aggregate",
    "atomic_write_bytes",
    "failed_rows",
    "ok_rows",
    "read_results",
]

KEY_COLUMNS = ("method", "emotion", "seed", "corpus", "role")
_RUN_KEYS = [*KEY_COLUMNS, "target", "condition", "sweep"]


class ReportError(FairserError):
    """The results given to a report function cannot be tabulated or plotted."""


def read_results(
    results: pd.DataFrame | str | os.PathLike, *, need: Iterable[str] = ()
) -> pd.DataFrame:
    """Return a checked copy of a results table (a DataFrame or a .csv/.parquet path).

    Parameters
    ----------
    results : pandas.DataFrame or path
        The results, or the path of ``results.csv`` / ``results.parquet``.
    need : iterable of str
        Metric columns the caller needs besides the key columns.

    Returns
    -------
    pandas.DataFrame
        A copy with ``sweep``, ``target``, ``condition``, ``reason`` and every ``<metric>_note``
        as strings ("" when missing) and ``status`` as a string ("ok" when missing or empty).

    Raises
    ------
    ReportError
        If the file cannot be read, a required column is missing, the table is empty, or two
        successful rows describe the same run and corpus.
    """
    where = "results"
    if not isinstance(results, pd.DataFrame):
        path = Path(results)
        where = str(path)
        try:
            results = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise ReportError(
                f"{path}: cannot read results ({type(exc).__name__}); pass a results.csv or "
                "results.parquet written by `fairser run`"
            ) from exc
    missing = [c for c in (*KEY_COLUMNS, *need) if c not in results.columns]
    if missing:
        raise ReportError(
            f"{where}: missing column(s) {missing}; a results table needs {list(KEY_COLUMNS)} "
            "plus the metrics shown"
        )
    if results.empty:
        raise ReportError(f"{where}: no rows; run the experiment before reporting it")
    df = results.reset_index(drop=True)
    notes = [c for c in df.columns if str(c).endswith(NOTE_SUFFIX)]
    for col in ("sweep", "target", "condition", "reason", *notes):
        if col in df.columns:
            df[col] = df[col].astype("string").fillna("").astype(str)
        else:
            df[col] = ""
    status = df["status"] if "status" in df.columns else pd.Series("", index=df.index)
    status = status.astype("string").fillna("").str.strip()
    df["status"] = status.mask(status == "", "ok").astype(str)
    for col in ("method", "emotion", "corpus", "role"):
        df[col] = df[col].astype("string").fillna("").astype(str)
    keys = _RUN_KEYS
    ok = (df["status"] == "ok").to_numpy()
    dup = np.zeros(len(df), dtype=bool)
    dup[ok] = df[ok].duplicated(subset=keys, keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:2].tolist()
        raise ReportError(
            f"{where}: rows {rows} describe the same run ({', '.join(keys)}); drop the "
            "duplicate or give them distinct `condition`/`sweep` values"
        )
    return df


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of successful runs (``status == "ok"``): the only rows means and figures use."""
    return df[df["status"] == "ok"]


def failed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of failed runs, with ``superseded`` True where a successful row has the same key.

    A run that failed and was then rerun successfully (a resumed grid) is history, not a
    failure of the results shown.
    """
    bad = df[df["status"] != "ok"].copy()
    ok_keys = set(map(tuple, ok_rows(df)[_RUN_KEYS].astype(str).to_numpy().tolist()))
    keys = bad[_RUN_KEYS].astype(str).to_numpy().tolist()
    bad["superseded"] = np.array([tuple(k) in ok_keys for k in keys], dtype=bool)
    return bad


def _mean_and_note(values: np.ndarray, notes: np.ndarray) -> tuple[float, str]:
    """Mean of one metric over rows, or NaN with the reason when a row lacks it."""
    n = len(values)
    undefined = notes != ""
    missing = np.isnan(values) & ~undefined
    if undefined.any():
        reasons = "; ".join(dict.fromkeys(notes[undefined].tolist()))
        k = int(undefined.sum())
        return np.nan, reasons if k == n else f"undefined in {k} of {n} runs: {reasons}"
    if missing.all():
        return np.nan, ""  # not measured / not applicable anywhere: shown as a dash
    if missing.any():
        return np.nan, f"missing in {int(missing.sum())} of {n} runs"
    return float(values.mean()), ""


def aggregate(df: pd.DataFrame, *, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean over seeds (and any row not separated by ``by``) of each metric.

    Parameters
    ----------
    df : pandas.DataFrame
        Checked results (:func:`read_results`).
    by : sequence of str
        Grouping columns, e.g. ``["method", "sweep", "emotion"]``.
    metrics : sequence of str
        Metric columns to summarise.

    Returns
    -------
    pandas.DataFrame
        One row per group with ``by``, then for each metric ``m``: ``m`` (mean), ``m_sd`` (sample
        standard deviation across rows, NaN for one row), ``m_lo`` / ``m_hi`` (mean of the rows'
        interval bounds when the input has them, else NaN), ``m_note`` (why the mean is NaN:
        the rows' ``m_note`` reasons when some rows have one, "missing in k of n runs" when
        some rows are NaN without a reason, "" when all are or none is); and ``n_seeds``
        (distinct seeds).
    """
    n = len(df)
    numbers = {}  # column -> float array over all rows (NaN where absent)
    texts = {}  # note column -> str array
    for m in metrics:
        for col in (m, f"{m}_lo", f"{m}_hi"):
            numbers[col] = (
                pd.to_numeric(df[col], errors="coerce").to_numpy(float)
                if col in df
                else np.full(n, np.nan)
            )
        note = f"{m}{NOTE_SUFFIX}"
        texts[note] = df[note].to_numpy(str) if note in df else np.full(n, "", dtype=object)
    seeds = df["seed"].to_numpy()
    rows = []
    for key, idx in df.groupby(list(by), sort=False, dropna=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        for m in metrics:
            values = numbers[m][idx]
            note = f"{m}{NOTE_SUFFIX}"
            row[m], row[note] = _mean_and_note(values, texts[note][idx])
            defined = np.isfinite(row[m])
            row[f"{m}_sd"] = float(values.std(ddof=1)) if defined and len(idx) > 1 else np.nan
            for b in ("lo", "hi"):
                bound = numbers[f"{m}_{b}"][idx]
                ok = defined and not np.isnan(bound).any()
                row[f"{m}_{b}"] = float(bound.mean()) if ok else np.nan
        row["n_seeds"] = int(pd.unique(seeds[idx]).size)
        rows.append(row)
    return pd.DataFrame(rows)
