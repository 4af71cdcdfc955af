"""Paired bootstrap comparisons of every method against a baseline, from stored predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from fairser.metrics._core import MetricError
from fairser.metrics.bootstrap import paired_bootstrap_test

__all__ = ["PREDICTION_COLUMNS", "compare_methods"]

#: Columns a predictions table needs; ``seed`` and ``sweep`` are optional (runs and variants).
PREDICTION_COLUMNS: tuple[str, ...] = ("method", "utt_id", "speaker", "gender", "y_true", "y_pred")

_BY_CANDIDATES = ("condition", "target", "corpus", "role", "emotion")


def _runs_matrix(rows: pd.DataFrame, order: pd.Index, *, what: str) -> tuple[np.ndarray, int]:
    """Predictions of one method as (R, n) in ``order`` of utterances, one row per seed."""
    seeds = rows["seed"] if "seed" in rows.columns else pd.Series(0, index=rows.index)
    out = []
    for seed, part in rows.groupby(seeds, sort=True):
        dup = part["utt_id"].duplicated()
        if dup.any():
            raise MetricError(
                f"predictions: {what}, seed {seed} lists utterance "
                f"{part['utt_id'][dup].iloc[0]!r} twice; keep one prediction per utterance"
            )
        series = part.set_index("utt_id")["y_pred"]
        missing = order.difference(series.index)
        if len(missing):
            raise MetricError(
                f"predictions: {what}, seed {seed} lacks {len(missing)} utterance(s) of the "
                f"baseline, e.g. {missing[0]!r}; compare methods on the same test set"
            )
        out.append(series.reindex(order).to_numpy())
    return np.stack(out), len(out)


def predictions_table(
    predictions: pd.DataFrame, by: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """A checked copy of a predictions table (``sweep`` as str, "" for none) and its grouping
    columns: ``by``, or those of ``condition``, ``target``, ``corpus``, ``role``, ``emotion``
    present."""
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise MetricError(
            f"predictions: missing column(s) {missing}; a predictions table needs "
            f"{list(PREDICTION_COLUMNS)} (plus seed, sweep and grouping columns)"
        )
    df = predictions.copy()
    df["sweep"] = (
        df["sweep"].astype("string").fillna("").astype(str) if "sweep" in df.columns else ""
    )
    keys = [c for c in _BY_CANDIDATES if c in df.columns] if by is None else list(by)
    absent = [c for c in keys if c not in df.columns]
    if absent:
        raise MetricError(f"by: column(s) {absent} not in the predictions; pick present ones")
    return df, keys


def compare_methods(
    predictions: pd.DataFrame,
    *,
    baseline: str = "source-only",
    by: Sequence[str] | None = None,
    metrics: Sequence[str] = ("uar", "dsp", "deo_max"),
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    group_order: Sequence = ("M", "F"),
    labels: Sequence | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
    progress: bool = False,
) -> pd.DataFrame:
    """Paired speaker-bootstrap test of every method (and sweep point) against a baseline.

    Within each group of ``by`` (e.g. one corpus, role and emotion), the baseline's and each
    other method's predictions on the same utterances are compared with
    :func:`paired_bootstrap_test`; several seeds of a method are averaged (a 2-D input).

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per (run, utterance), columns :data:`PREDICTION_COLUMNS` plus ``seed``
        (optional: runs averaged), ``sweep`` (optional: sweep points kept apart) and the
        ``by`` columns.
    baseline : str, default "source-only"
        Method every other method is compared with (its rows with an empty ``sweep``).
    by : sequence of str, optional
        Grouping columns; default those of ``condition``, ``target``, ``corpus``, ``role`` and
        ``emotion`` present.
    metrics : sequence of str, default ("uar", "dsp", "deo_max")
        Metrics tested (names of :func:`fairser.metrics.metric_names`).
    n_boot, confidence, seed, group_order, labels, pos_label, average
        As in :func:`paired_bootstrap_test`; ``group_order`` fixes the genders.
    progress : bool, default False
        Show a progress bar over the comparisons.

    Returns
    -------
    pandas.DataFrame
        One row per group, method, sweep point and metric: the ``by`` columns, ``method``,
        ``sweep``, ``baseline``, ``metric``, ``a`` (the method), ``b`` (the baseline),
        ``difference`` (a - b), ``lo``, ``hi``, ``p_value``, ``runs_a`` and ``runs_b`` (seeds
        averaged).
        Groups without baseline rows are skipped.

    Raises
    ------
    MetricError
        If a column is missing, or a method lacks some of the baseline's utterances, or the
        utterances disagree on their label, speaker or gender.
    """
    df, keys = predictions_table(predictions, by)
    groups = list(df.groupby(keys, sort=False)) if keys else [((), df)]
    jobs = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = part[(part["method"] == baseline) & (part["sweep"] == "")]
        if base.empty:
            continue
        others = part[~((part["method"] == baseline) & (part["sweep"] == ""))]
        for (method, sweep), rows in others.groupby(["method", "sweep"], sort=False):
            jobs.append((dict(zip(keys, key, strict=True)), base, method, sweep, rows))
    out = []
    with Progress(
        TextColumn("[bold]paired tests[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("compare", total=len(jobs))
        for values, base, method, sweep, rows in jobs:
            what = ", ".join(f"{k}={v}" for k, v in values.items())
            first = base.drop_duplicates("utt_id").set_index("utt_id")
            order = first.index
            _check_same_truth(first, rows, what=f"{what}, method {method}")
            b, runs_b = _runs_matrix(base, order, what=f"{what}, method {baseline}")
            a, runs_a = _runs_matrix(rows, order, what=f"{what}, method {method}")
            table = paired_bootstrap_test(
                first["y_true"].to_numpy(),
                a,
                b,
                sensitive_features=first["gender"].to_numpy(),
                speakers=first["speaker"].to_numpy(),
                metrics=list(metrics),
                n_boot=n_boot,
                confidence=confidence,
                seed=seed,
                group_order=list(group_order),
                labels=labels,
                pos_label=pos_label,
                average=average,
            )
            for metric, row in table.iterrows():
                out.append(
                    {
                        **values,
                        "method": method,
                        "sweep": sweep,
                        "baseline": baseline,
                        "metric": metric,
                        **row.to_dict(),
                        "runs_a": runs_a,
                        "runs_b": runs_b,
                    }
                )
            bar.advance(task)
    columns = [
        *keys,
        "method",
        "sweep",
        "baseline",
        "metric",
        "a",
        "b",
        "difference",
        "lo",
        "hi",
        "p_value",
        "runs_a",
        "runs_b",
    ]
    return pd.DataFrame(out, columns=columns)


def _check_same_truth(first: pd.DataFrame, rows: pd.DataFrame, *, what: str) -> None:
    """The compared rows must agree with the baseline on label, speaker and gender."""
    other = rows.drop_duplicates("utt_id").set_index("utt_id")
    common = first.index.intersection(other.index)
    for col in ("y_true", "speaker", "gender"):
        left = first.loc[common, col].astype(str)
        right = other.loc[common, col].astype(str)
        bad = left != right
        if bad.any():
            utt = bad[bad].index[0]
            raise MetricError(
                f"predictions: {what}: utterance {utt!r} has {col} {right[utt]!r} but the "
                f"baseline has {left[utt]!r}; both must describe the same test set"
            )
