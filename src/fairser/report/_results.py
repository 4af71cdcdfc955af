"""The results table the report reads: checks, ordering, labels and seed aggregation.

A results DataFrame has one row per run and evaluated corpus. Required columns: ``method``,
``emotion``, ``seed``, ``corpus``, ``role`` (``source`` or ``target``) and the metrics a
function needs (``uar``, ``dsp``, ``deo_max`` ...). Optional columns the report understands:

- ``target`` and ``condition``: split the tables and plots into blocks (a source evaluated
  under two target corpora or two source conditions is two blocks);
- ``sweep`` (a label such as ``alpha=0.5,beta=1``, empty without a sweep) and ``sweep_<key>``:
  a sweep point is its own row next to its method, and enables the Pareto plot;
- ``<metric>_lo`` / ``<metric>_hi``: speaker-bootstrap interval bounds of one run;
- ``confidence``: the coverage of those intervals;
- ``gc_acc``, ``probe``, ``probe_input``: gender detection.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairser._io import atomic_write_bytes
from fairser.errors import FairserError

__all__ = [
    "METHOD_LABELS",
    "METHOD_ORDER",
    "ReportError",
    "aggregate",
    "atomic_write_bytes",
    "block_columns",
    "block_title",
    "method_label",
    "method_rank",
    "ordered_blocks",
    "read_results",
]

#: Display order of the methods; others follow in order of appearance.
METHOD_ORDER: tuple[str, ...] = (
    "linear-probe",
    "source-only",
    "pa",
    "pa-rew",
    "pa-fairw",
    "pa-adv",
    "pa-cfa",
)

#: Display names in the paper's spelling.
METHOD_LABELS: dict[str, str] = {
    "linear-probe": "Linear probe",
    "source-only": "Source-only",
    "pa": "PA",
    "pa-rew": "PA-ReW",
    "pa-fairw": "PA-FairW",
    "pa-adv": "PA-Adv",
    "pa-cfa": "PA-CFA",
}

_KEY_COLUMNS = ("method", "emotion", "seed", "corpus", "role")
_BLOCK_CANDIDATES = ("condition", "target", "role", "corpus")
_ROLE_ORDER = {"source": 0, "target": 1}


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
        A copy with ``sweep``, ``target`` and ``condition`` as strings ("" when missing).

    Raises
    ------
    ReportError
        If the file cannot be read, a required column is missing, the table is empty, or two
        rows describe the same run and corpus.
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
    missing = [c for c in (*_KEY_COLUMNS, *need) if c not in results.columns]
    if missing:
        raise ReportError(
            f"{where}: missing column(s) {missing}; a results table needs {list(_KEY_COLUMNS)} "
            "plus the metrics shown"
        )
    if results.empty:
        raise ReportError(f"{where}: no rows; run the experiment before reporting it")
    df = results.copy()
    for col in ("sweep", "target", "condition"):
        if col in df.columns:
            df[col] = df[col].astype("string").fillna("").astype(str)
        else:
            df[col] = ""
    for col in ("method", "emotion", "corpus", "role"):
        df[col] = df[col].astype(str)
    keys = [*_KEY_COLUMNS, "target", "condition", "sweep"]
    dup = df.duplicated(subset=keys, keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:2].tolist()
        raise ReportError(
            f"{where}: rows {rows} describe the same run ({', '.join(keys)}); drop the "
            "duplicate or give them distinct `condition`/`sweep` values"
        )
    return df


def method_label(method: str, sweep: str = "") -> str:
    """Display name of a method, with its sweep point in brackets."""
    label = METHOD_LABELS.get(method, method)
    return f"{label} ({sweep})" if sweep else label


def _appearance(values: Iterable) -> dict:
    order: dict = {}
    for v in values:
        order.setdefault(v, len(order))
    return order


def method_rank(methods: Iterable[str]) -> dict[str, int]:
    """Rank of each method: :data:`METHOD_ORDER` first, then the others in appearance order."""
    seen = _appearance(methods)
    known = {m: i for i, m in enumerate(METHOD_ORDER)}
    extra = sorted((m for m in seen if m not in known), key=seen.__getitem__)
    return {
        **{m: known[m] for m in seen if m in known},
        **{m: len(known) + i for i, m in enumerate(extra)},
    }


def block_columns(df: pd.DataFrame) -> list[str]:
    """Columns that split results into blocks: condition and target only when they vary."""
    cols = []
    for col in _BLOCK_CANDIDATES:
        if col in ("role", "corpus") or df[col].nunique() > 1:
            cols.append(col)
    return cols


def ordered_blocks(df: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """Split into blocks (see :func:`block_columns`) in display order: source before target."""
    cols = block_columns(df)
    orders = {c: _appearance(df[c]) for c in cols}
    groups = []
    for key, part in df.groupby(cols, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        values = dict(zip(cols, key, strict=True))
        rank = tuple(
            _ROLE_ORDER.get(values[c], 2) if c == "role" else orders[c][values[c]] for c in cols
        )
        groups.append((rank, values, part))
    groups.sort(key=lambda g: g[0])
    return [(values, part) for _, values, part in groups]


def block_title(values: dict) -> str:
    """Heading of a block, e.g. ``casia (target)`` or ``ravdess (source), target casia``."""
    title = f"{values['corpus']} ({values['role']})"
    extra = []
    if values.get("target") and not (
        values["role"] == "target" and values["target"] == values["corpus"]
    ):
        extra.append(f"target {values['target']}")
    if values.get("condition"):
        extra.append(f"condition {values['condition']}")
    return ", ".join([title, *extra])


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
        interval bounds when the input has them, else NaN); and ``n_seeds`` (distinct seeds).
    """
    rows = []
    for key, part in df.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        for m in metrics:
            values = pd.to_numeric(part[m], errors="coerce") if m in part else pd.Series([np.nan])
            row[m] = float(values.mean()) if values.notna().any() else np.nan
            row[f"{m}_sd"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else np.nan
            for b in ("lo", "hi"):
                col = f"{m}_{b}"
                bound = pd.to_numeric(part[col], errors="coerce") if col in part else None
                row[col] = (
                    float(bound.mean()) if bound is not None and bound.notna().any() else np.nan
                )
        row["n_seeds"] = int(part["seed"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


