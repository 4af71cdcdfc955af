"""Per-group rates and group-fairness gaps (fairlearn conventions).

``y_true`` and ``y_pred`` are positional, every option keyword-only, and the protected
attribute is ``sensitive_features=``. A task is *binary* when the labels are a subset of
{0, 1}, or two non-numeric (or explicitly given) labels including ``pos_label``; the fairness
metrics then describe the positive class exactly as fairlearn does. Otherwise the task is
*multi-class*: each class is scored one-vs-rest and the per-class values are reduced by
``average`` ("macro": mean over the classes where the value is defined, "max": the worst
class, None: a Series per class).

Undefined values are NaN rather than 0: a group with no positives of a class has no true-positive
rate, one with no negatives has no false-positive rate, and a gap needs at least two groups with
a defined rate. Equalized odds is NaN when either of its two gaps is.
:func:`fairser.metrics.undefined_reasons` says which of these applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairser.metrics._core import (
    MetricError,
    check_average,
    core_metrics,
    encode,
    group_counts,
    rates_from_counts,
)

__all__ = [
    "demographic_parity_difference",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "false_positive_rate_difference",
    "group_rates",
    "selection_rate_by_group",
    "true_positive_rate_difference",
]

Average = Literal["macro", "max"] | None

#: The parameters and result every gap function shares, appended to its summary.
_GAP_DOC = """
    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row (e.g. ``"M"``/``"F"``); any number of groups.{extra}
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    average : {{"macro", "max"}} or None, default "macro"
        Multi-class only: reduce the one-vs-rest values by their mean over the classes where
        they are defined ("macro"), their maximum ("max"), or return a Series per class (None).

    Returns
    -------
    float or pandas.Series
        The largest minus the smallest group rate (0 is parity); NaN when fewer than two groups
        have the rate defined{nan}.
    """


def _gap_doc(summary: str, *, extra: str = "", nan: str = "") -> Callable:
    """Decorator: the function's docstring is ``summary`` plus the shared gap parameters."""

    def apply(func: Callable) -> Callable:
        func.__doc__ = summary + "\n" + _GAP_DOC.format(extra=extra, nan=nan)
        return func

    return apply


def _scalar_or_series(values: np.ndarray, labels: np.ndarray, pos: int | None, average):
    if pos is None and average is None:
        return pd.Series(values, index=pd.Index(labels.tolist(), name="class"), dtype=float)
    return float(values)


def group_rates(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    group_order: Sequence | None = None,
) -> pd.DataFrame:
    """Every per-group rate in one table.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    group_order : sequence, optional
        Groups to report, in order; default the groups present.

    Returns
    -------
    pandas.DataFrame
        Binary: one row per group, columns ``n``, ``selection_rate``, ``tpr``, ``fpr``, ``uar``.
        Multi-class: one row per (group, class), the rates one-vs-rest for that class and
        ``uar`` the group's UAR over all classes (NaN when the group lacks a class, see
        :mod:`fairser.metrics.recall`).
    """
    enc = encode(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        labels=labels,
        pos_label=pos_label,
        group_order=group_order,
    )
    counts = group_counts(enc)
    r = rates_from_counts(counts)
    uar_g = core_metrics(counts, pos=enc.pos, required=enc.required)["uar_g"]
    if enc.pos is not None:
        return pd.DataFrame(
            {
                "n": r.n.astype(np.int64),
                "selection_rate": r.sel[:, enc.pos],
                "tpr": r.tpr[:, enc.pos],
                "fpr": r.fpr[:, enc.pos],
                "uar": uar_g,
            },
            index=pd.Index(enc.groups, name="group"),
        )
    rows = []
    for gi, g in enumerate(enc.groups):
        for ci, c in enumerate(enc.labels.tolist()):
            rows.append(
                {
                    "group": g,
                    "class": c,
                    "n": int(r.n[gi]),
                    "selection_rate": r.sel[gi, ci],
                    "tpr": r.tpr[gi, ci],
                    "fpr": r.fpr[gi, ci],
                    "uar": uar_g[gi],
                }
            )
    return pd.DataFrame(rows).set_index(["group", "class"])


def selection_rate_by_group(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    group_order: Sequence | None = None,
) -> pd.Series | pd.DataFrame:
    """Share of rows predicted positive, P(y^ = positive | group).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels (``y_true`` fixes the class list only).
    sensitive_features : array-like of shape (n,)
        Group of each row.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    group_order : sequence, optional
        Groups to report, in order; default the groups present.

    Returns
    -------
    pandas.Series or pandas.DataFrame
        Binary: a Series indexed by group. Multi-class: a DataFrame, groups as rows and classes
        as columns (the share predicted as each class).
    """
    enc = encode(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        labels=labels,
        pos_label=pos_label,
        group_order=group_order,
    )
    sel = rates_from_counts(group_counts(enc)).sel
    index = pd.Index(enc.groups, name="group")
    if enc.pos is not None:
        return pd.Series(sel[:, enc.pos], index=index, name="selection_rate")
    return pd.DataFrame(sel, index=index, columns=pd.Index(enc.labels.tolist(), name="class"))


def _gap_metric(
    key: str,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    pos_label: Any,
    labels: Sequence | None,
    average: str | None,
) -> float | pd.Series:
    """One gap metric (a key of :func:`core_metrics`) of raw inputs."""
    check_average(average, allow_none=True)
    enc = encode(
        y_true, y_pred, sensitive_features=sensitive_features, labels=labels, pos_label=pos_label
    )
    values = core_metrics(group_counts(enc), pos=enc.pos, average=average)[key]
    return _scalar_or_series(values, enc.labels, enc.pos, average)


@_gap_doc(
    """Statistical (demographic) parity difference dSP = |P(y^=1 | M) - P(y^=1 | F)|.

    With two groups this is the absolute gap in selection rate; with more, the largest minus the
    smallest. Equals :func:`fairlearn.metrics.demographic_parity_difference`.
    """
)
def demographic_parity_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Average = "macro",
) -> float | pd.Series:
    return _gap_metric("dsp", y_true, y_pred, sensitive_features, pos_label, labels, average)


@_gap_doc(
    """True-positive-rate gap |P(y^=1 | y=1, M) - P(y^=1 | y=1, F)|: equal opportunity.

    Equals :func:`fairlearn.metrics.true_positive_rate_difference` and
    :func:`fairlearn.metrics.equal_opportunity_difference`; also available here as
    :func:`equal_opportunity_difference`.
    """
)
def true_positive_rate_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Average = "macro",
) -> float | pd.Series:
    return _gap_metric("tpr_gap", y_true, y_pred, sensitive_features, pos_label, labels, average)


#: Equal opportunity difference: the true-positive-rate gap (fairlearn's name for it).
equal_opportunity_difference = true_positive_rate_difference


@_gap_doc(
    """False-positive-rate gap |P(y^=1 | y=0, M) - P(y^=1 | y=0, F)|.

    Equals :func:`fairlearn.metrics.false_positive_rate_difference`.
    """
)
def false_positive_rate_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Average = "macro",
) -> float | pd.Series:
    return _gap_metric("fpr_gap", y_true, y_pred, sensitive_features, pos_label, labels, average)


@_gap_doc(
    """Equalized odds difference dEO from the true- and false-positive-rate gaps.

    ``agg="max"``: max(|dTPR|, |dFPR|), equal to
    :func:`fairlearn.metrics.equalized_odds_difference` (its ``agg="worst_case"``).
    ``agg="sum"``: |dTPR| + |dFPR|, the form some papers report (twice fairlearn's ``"mean"``).
    For multi-class, each class's dEO is formed first and then reduced by ``average``.
    """,
    extra="""
    agg : {"max", "sum"}, default "max"
        How to combine the two gaps.""",
    nan="; NaN also when either gap is NaN",
)
def equalized_odds_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    agg: Literal["max", "sum"] = "max",
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Average = "macro",
) -> float | pd.Series:
    if agg not in ("max", "sum"):
        raise MetricError(f"agg={agg!r} is not 'max' or 'sum'; pick one")
    key = "deo_max" if agg == "max" else "deo_sum"
    return _gap_metric(key, y_true, y_pred, sensitive_features, pos_label, labels, average)
