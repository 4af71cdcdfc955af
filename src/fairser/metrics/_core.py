"""Confusion counts and vectorised rates shared by every metric (inputs: :mod:`._inputs`).

Every metric in :mod:`fairser.metrics` is computed from one representation: confusion matrices
per group, an array of shape ``(..., G, C, C)`` (rows: true class, columns: predicted class).
Point estimates use it with no leading axis, the bootstrap with one leading axis of resamples,
so a bootstrap estimate and the matching point function can never disagree.

Undefined rates are NaN:

- the true-positive rate of a group with no true positives of the class (no positives),
- the false-positive rate of a group with no true negatives of the class (no negatives),
- the selection rate of a group with no rows.

A gap between groups is the largest minus the smallest rate over the groups where the rate is
defined, and NaN when fewer than two groups have it (no comparison is possible). fairlearn
reports 0 with a warning for these cases instead; with both groups populated the two agree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fairser.metrics._inputs import Encoded, MetricError, as_1d, encode

__all__ = [
    "Average",
    "Encoded",
    "MetricError",
    "Rates",
    "aggregate_classes",
    "as_1d",
    "check_average",
    "confusion_by_cluster",
    "core_metrics",
    "encode",
    "group_counts",
    "group_gap",
    "mean_recall",
    "nanmax",
    "nanmean",
    "rates_from_counts",
]

Average = Literal["macro", "max"]


def confusion_by_cluster(
    cluster: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, n_clusters: int, n_classes: int
) -> np.ndarray:
    """Confusion matrices per cluster, shape (n_clusters, C, C), int64."""
    flat = (cluster * n_classes + y_true) * n_classes + y_pred
    counts = np.bincount(flat, minlength=n_clusters * n_classes * n_classes)
    return counts.reshape(n_clusters, n_classes, n_classes)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; NaN (without a warning) where every value is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def nanmax(values: np.ndarray, axis: int) -> np.ndarray:
    """Maximum ignoring NaN; NaN (without a warning) where every value is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(values, axis=axis)


def group_gap(rates: np.ndarray, axis: int) -> np.ndarray:
    """Largest minus smallest rate over ``axis`` among defined rates; NaN if fewer than two."""
    defined = np.sum(~np.isnan(rates), axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gap = np.nanmax(rates, axis=axis) - np.nanmin(rates, axis=axis)
    return np.where(defined >= 2, gap, np.nan)


@dataclass(frozen=True)
class Rates:
    """Per-group, per-class one-vs-rest rates from confusion counts of shape (..., G, C, C).

    Attributes
    ----------
    n : numpy.ndarray
        Rows per group, shape (..., G).
    tpr, fpr, sel : numpy.ndarray
        True-positive, false-positive and selection rates, shape (..., G, C), NaN when undefined.
    recall_overall : numpy.ndarray
        Recall per class with every group pooled, shape (..., C).
    """

    n: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    sel: np.ndarray
    recall_overall: np.ndarray


def rates_from_counts(counts: np.ndarray) -> Rates:
    """Compute one-vs-rest rates from per-group confusion matrices (rows true, cols predicted)."""
    counts = np.asarray(counts, dtype=np.float64)
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    pos = counts.sum(axis=-1)
    pred = counts.sum(axis=-2)
    n = pos.sum(axis=-1)
    neg = n[..., None] - pos
    tpr = _divide(tp, pos)
    fpr = _divide(pred - tp, neg)
    sel = _divide(pred, np.broadcast_to(n[..., None], pred.shape))
    pooled = counts.sum(axis=-3)
    recall_overall = _divide(np.diagonal(pooled, axis1=-2, axis2=-1), pooled.sum(axis=-1))
    return Rates(n=n, tpr=tpr, fpr=fpr, sel=sel, recall_overall=recall_overall)


def check_average(average: Any, *, allow_none: bool) -> None:
    """Refuse an ``average`` option other than "macro", "max" (or None when allowed)."""
    allowed: tuple = ("macro", "max", None) if allow_none else ("macro", "max")
    if average not in allowed:
        raise MetricError(f"average={average!r} is not one of {list(allowed)}; pick one")


def aggregate_classes(values: np.ndarray, *, pos: int | None, average: str | None) -> np.ndarray:
    """Reduce the class axis (last): the positive class if binary, else macro/max/none."""
    if pos is not None:
        return values[..., pos]
    if average == "macro":
        return nanmean(values, axis=-1)
    if average == "max":
        return nanmax(values, axis=-1)
    if average is None:
        return values
    raise MetricError(f"average={average!r} is not one of 'macro', 'max' or None; pick one")


def mean_recall(recall: np.ndarray, required: np.ndarray | None) -> np.ndarray:
    """UAR from per-class recalls of shape (..., C): the one definition of UAR.

    With ``required`` (a (C,) mask, see :func:`fairser.metrics._inputs.required_classes`) the
    mean over those classes, NaN when one of them has no recall (no true example). Without it
    the mean over the classes that have a recall (the lenient form some callers need).
    """
    if required is None:
        return nanmean(recall, axis=-1)
    need = np.asarray(required, dtype=bool)
    if not need.any():
        return np.full(recall.shape[:-1], np.nan)
    return recall[..., need].mean(axis=-1)


def core_metrics(
    counts: np.ndarray,
    *,
    pos: int | None,
    average: str | None = "macro",
    required: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every headline metric from per-group confusion counts of shape (..., G, C, C).

    Returns arrays of shape (...,): ``uar``, ``uar_g`` (shape (..., G)), ``dsp``, ``tpr_gap``,
    ``fpr_gap``, ``deo_max``, ``deo_sum``; fairness values reduce the class axis with
    :func:`aggregate_classes` after computing each class's gaps. UAR follows
    :func:`mean_recall` with ``required``.
    """
    r = rates_from_counts(counts)
    uar = mean_recall(r.recall_overall, required)
    uar_g = mean_recall(r.tpr, required)
    dsp_c = group_gap(r.sel, axis=-2)
    tpr_c = group_gap(r.tpr, axis=-2)
    fpr_c = group_gap(r.fpr, axis=-2)
    both = ~(np.isnan(tpr_c) | np.isnan(fpr_c))
    deo_max_c = np.where(both, np.fmax(tpr_c, fpr_c), np.nan)
    deo_sum_c = tpr_c + fpr_c
    return {
        "uar": uar,
        "uar_g": uar_g,
        "dsp": aggregate_classes(dsp_c, pos=pos, average=average),
        "tpr_gap": aggregate_classes(tpr_c, pos=pos, average=average),
        "fpr_gap": aggregate_classes(fpr_c, pos=pos, average=average),
        "deo_max": aggregate_classes(deo_max_c, pos=pos, average=average),
        "deo_sum": aggregate_classes(deo_sum_c, pos=pos, average=average),
    }


def group_counts(enc: Encoded) -> np.ndarray:
    """Confusion matrices per group of encoded inputs, shape (G, C, C)."""
    return confusion_by_cluster(
        enc.group, enc.y_true, enc.y_pred, n_clusters=len(enc.groups), n_classes=enc.n_classes
    )
