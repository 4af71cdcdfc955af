"""Point metrics: UAR, per-group rates and group-fairness gaps (fairlearn conventions).

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
"""

from __future__ import annotations

from collections.abc import Sequence
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
    "recall_by_group",
    "selection_rate_by_group",
    "true_positive_rate_difference",
    "unweighted_average_recall",
]


def _scalar_or_series(values: np.ndarray, labels: np.ndarray, pos: int | None, average):
    if pos is None and average is None:
        return pd.Series(values, index=pd.Index(labels.tolist(), name="class"), dtype=float)
    return float(values)


def unweighted_average_recall(y_true: Any, y_pred: Any, *, labels: Sequence | None = None) -> float:
    """Unweighted average recall (UAR): the mean of the per-class recalls.

    Classes are averaged over those present in ``y_true`` (a class that is only predicted has no
    recall), which equals :func:`sklearn.metrics.balanced_accuracy_score`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.

    Returns
    -------
    float
        UAR in [0, 1]; chance level is 1 / (number of classes).
    """
    # a fresh sentinel as pos_label: never a label, so the classes are taken as they are
    enc = encode(y_true, y_pred, labels=labels, pos_label=object())
    return float(core_metrics(group_counts(enc), pos=None)["uar"])


def recall_by_group(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    labels: Sequence | None = None,
    group_order: Sequence | None = None,
) -> pd.Series:
    """UAR computed within each group (e.g. within the male and within the female speakers).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    group_order : sequence, optional
        Groups to report, in order; a group without rows is NaN. Default: the groups present.

    Returns
    -------
    pandas.Series
        UAR per group, indexed by group. Within a group, classes absent from that group's true
        labels are left out of the mean.
    """
    enc = encode(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        labels=labels,
        pos_label=object(),
        group_order=group_order,
    )
    uar_g = core_metrics(group_counts(enc), pos=None)["uar_g"]
    return pd.Series(uar_g, index=pd.Index(enc.groups, name="group"), name="uar")


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
        ``uar`` the group's UAR over all classes.
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
    uar_g = core_metrics(counts, pos=enc.pos)["uar_g"]
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
    *,
    sensitive_features: Any,
    pos_label: Any,
    labels: Sequence | None,
    average: str | None,
) -> float | pd.Series:
    check_average(average, allow_none=True)
    enc = encode(
        y_true, y_pred, sensitive_features=sensitive_features, labels=labels, pos_label=pos_label
    )
    values = core_metrics(group_counts(enc), pos=enc.pos, average=average)[key]
    return _scalar_or_series(values, enc.labels, enc.pos, average)


def demographic_parity_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Literal["macro", "max"] | None = "macro",
) -> float | pd.Series:
    """Statistical (demographic) parity difference dSP = |P(y^=1 | M) - P(y^=1 | F)|.

    With two groups this is the absolute gap in selection rate; with more, the largest minus the
    smallest. Equals :func:`fairlearn.metrics.demographic_parity_difference`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row (e.g. ``"M"``/``"F"``); any number of groups.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    average : {"macro", "max"} or None, default "macro"
        Multi-class only: reduce the one-vs-rest values by their mean over the classes where
        they are defined ("macro"), their maximum ("max"), or return a Series per class (None).

    Returns
    -------
    float or pandas.Series
        The largest minus the smallest group rate (0 is parity); NaN when fewer than two groups
        have the rate defined.
    """
    return _gap_metric(
        "dsp",
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        labels=labels,
        average=average,
    )


def true_positive_rate_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Literal["macro", "max"] | None = "macro",
) -> float | pd.Series:
    """True-positive-rate gap |P(y^=1 | y=1, M) - P(y^=1 | y=1, F)|.

    The same value as :func:`equal_opportunity_difference`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row (e.g. ``"M"``/``"F"``); any number of groups.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    average : {"macro", "max"} or None, default "macro"
        Multi-class only: reduce the one-vs-rest values by their mean over the classes where
        they are defined ("macro"), their maximum ("max"), or return a Series per class (None).

    Returns
    -------
    float or pandas.Series
        The largest minus the smallest group rate (0 is parity); NaN when fewer than two groups
        have the rate defined.
    """
    return _gap_metric(
        "tpr_gap",
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        labels=labels,
        average=average,
    )


def equal_opportunity_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Literal["macro", "max"] | None = "macro",
) -> float | pd.Series:
    """Equal opportunity difference: the true-positive-rate gap between groups.

    Equals :func:`fairlearn.metrics.equal_opportunity_difference`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row (e.g. ``"M"``/``"F"``); any number of groups.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    average : {"macro", "max"} or None, default "macro"
        Multi-class only: reduce the one-vs-rest values by their mean over the classes where
        they are defined ("macro"), their maximum ("max"), or return a Series per class (None).

    Returns
    -------
    float or pandas.Series
        The largest minus the smallest group rate (0 is parity); NaN when fewer than two groups
        have the rate defined.
    """
    return _gap_metric(
        "tpr_gap",
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        labels=labels,
        average=average,
    )


def false_positive_rate_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Literal["macro", "max"] | None = "macro",
) -> float | pd.Series:
    """False-positive-rate gap |P(y^=1 | y=0, M) - P(y^=1 | y=0, F)|.

    Equals :func:`fairlearn.metrics.false_positive_rate_difference`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row (e.g. ``"M"``/``"F"``); any number of groups.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    average : {"macro", "max"} or None, default "macro"
        Multi-class only: reduce the one-vs-rest values by their mean over the classes where
        they are defined ("macro"), their maximum ("max"), or return a Series per class (None).

    Returns
    -------
    float or pandas.Series
        The largest minus the smallest group rate (0 is parity); NaN when fewer than two groups
        have the rate defined.
    """
    return _gap_metric(
        "fpr_gap",
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        labels=labels,
        average=average,
    )


def equalized_odds_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    agg: Literal["max", "sum"] = "max",
    pos_label: Any = 1,
    labels: Sequence | None = None,
    average: Literal["macro", "max"] | None = "macro",
) -> float | pd.Series:
    """Equalized odds difference dEO from the true- and false-positive-rate gaps.

    ``agg="max"``: max(|dTPR|, |dFPR|), equal to
    :func:`fairlearn.metrics.equalized_odds_difference` (its ``agg="worst_case"``).
    ``agg="sum"``: |dTPR| + |dFPR|, the form some papers report (twice fairlearn's ``"mean"``).
    For multi-class, each class's dEO is formed first and then reduced by ``average``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row (e.g. ``"M"``/``"F"``); any number of groups.
    agg : {"max", "sum"}, default "max"
        How to combine the two gaps.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    average : {"macro", "max"} or None, default "macro"
        Multi-class only: reduce the one-vs-rest values by their mean over the classes where
        they are defined ("macro"), their maximum ("max"), or return a Series per class (None).

    Returns
    -------
    float or pandas.Series
        The largest minus the smallest group rate (0 is parity); NaN when fewer than two groups
        have the rate defined; NaN also when either gap is NaN.
    """
    if agg not in ("max", "sum"):
        raise MetricError(f"agg={agg!r} is not 'max' or 'sum'; pick one")
    return _gap_metric(
        "deo_max" if agg == "max" else "deo_sum",
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        pos_label=pos_label,
        labels=labels,
        average=average,
    )
