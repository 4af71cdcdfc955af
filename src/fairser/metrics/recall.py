"""UAR, the accuracy measure of speech emotion recognition, defined once for every caller.

UAR (unweighted average recall) is the mean of the per-class recalls over the classes of the
task. Binary and multi-class tasks share the definition:

- the classes are ``labels`` when given; otherwise the union of ``y_true`` and ``y_pred``, where
  0/1 labels are a binary task with both classes and any other inferred class list needs only
  the classes present in ``y_true`` (a class that is only predicted is skipped, as in
  :func:`sklearn.metrics.balanced_accuracy_score`);
- a class of the task with no true example has no recall, and then UAR is **undefined (NaN)**,
  not the mean of the other recalls: a binary test set without positives (boredom on CASIA)
  would otherwise score its specificity as "UAR". :func:`fairser.metrics.undefined_reasons`
  says why a value is NaN. ``absent_class="skip"`` restores the lenient mean over the classes
  present, for callers that must rank models on whatever a split holds (early stopping).

:func:`unweighted_average_recall` takes any labels; :func:`uar_from_codes` is the same number
for integer class codes without validation overhead (training loops); :func:`recall_by_group`
is UAR within each group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairser.metrics._core import (
    MetricError,
    confusion_by_cluster,
    core_metrics,
    encode,
    group_counts,
    mean_recall,
    rates_from_counts,
)

__all__ = ["recall_by_group", "uar_from_codes", "unweighted_average_recall"]

AbsentClass = Literal["nan", "skip"]


def _check_absent(absent_class: Any) -> None:
    if absent_class not in ("nan", "skip"):
        raise MetricError(f"absent_class={absent_class!r} is not 'nan' or 'skip'; pick one")


def unweighted_average_recall(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence | None = None,
    absent_class: AbsentClass = "nan",
) -> float:
    """Unweighted average recall (UAR): the mean of the per-class recalls.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,)
        Predicted labels.
    labels : sequence, optional
        The classes of the task; default the union of ``y_true`` and ``y_pred`` (see the
        module docstring for which of those are needed).
    absent_class : {"nan", "skip"}, default "nan"
        A needed class without true examples makes UAR NaN ("nan"), or is left out of the
        mean ("skip", scikit-learn's balanced accuracy).

    Returns
    -------
    float
        UAR in [0, 1] (chance is 1 / number of classes), or NaN when undefined.

    Raises
    ------
    MetricError
        On empty, missing or inconsistent inputs.
    """
    _check_absent(absent_class)
    enc = encode(y_true, y_pred, labels=labels)
    counts = group_counts(enc)
    required = enc.required if absent_class == "nan" else None
    return float(core_metrics(counts, pos=None, required=required)["uar"])


def uar_from_codes(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int | None = None,
    absent_class: AbsentClass = "nan",
) -> float:
    """UAR of integer class codes: :func:`unweighted_average_recall` without label handling.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray of int, shape (n,)
        Class indices in ``[0, n_classes)``.
    n_classes : int, optional
        Number of classes of the task; every one of them is needed. Default: inferred as
        :func:`unweighted_average_recall` infers it (codes 0/1 are a binary task with both
        classes needed; otherwise the classes present in ``y_true``).
    absent_class : {"nan", "skip"}, default "nan"
        As in :func:`unweighted_average_recall`.

    Returns
    -------
    float
        The UAR; NaN for an empty input or when undefined.

    Raises
    ------
    MetricError
        If the arrays are not 1-D integer arrays of one length, or a code is out of range.
    """
    _check_absent(absent_class)
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if yt.ndim != 1 or yt.shape != yp.shape:
        raise MetricError(
            f"y_true {yt.shape} and y_pred {yp.shape}: pass two 1-D arrays of one length"
        )
    if yt.dtype.kind not in "biu" or yp.dtype.kind not in "biu":
        raise MetricError(
            f"uar_from_codes needs integer class codes, got {yt.dtype} and {yp.dtype}; "
            "use unweighted_average_recall for other labels"
        )
    if yt.size == 0:
        return float("nan")
    yt = yt.astype(np.int64, copy=False)
    yp = yp.astype(np.int64, copy=False)
    low = min(int(yt.min()), int(yp.min()))
    high = max(int(yt.max()), int(yp.max()))
    # inferred codes within {0, 1} are a binary task: both classes, as for 0/1 labels
    c = max(high + 1, 2) if n_classes is None else int(n_classes)
    if low < 0 or high >= c:
        raise MetricError(
            f"class codes span [{low}, {high}] but n_classes={c}; codes must lie in [0, C)"
        )
    counts = confusion_by_cluster(np.zeros_like(yt), yt, yp, n_clusters=1, n_classes=c)
    recall = rates_from_counts(counts).recall_overall
    if absent_class == "skip":
        required = None
    elif n_classes is not None or c == 2:
        required = np.ones(c, dtype=bool)
    else:
        required = np.bincount(yt, minlength=c) > 0
    return float(mean_recall(recall, required))


def recall_by_group(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    labels: Sequence | None = None,
    group_order: Sequence | None = None,
    absent_class: AbsentClass = "nan",
) -> pd.Series:
    """UAR computed within each group (e.g. within the male and within the female speakers).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row.
    labels : sequence, optional
        The classes of the task (as in :func:`unweighted_average_recall`).
    group_order : sequence, optional
        Groups to report, in order; a group without rows is NaN. Default: the groups present.
    absent_class : {"nan", "skip"}, default "nan"
        A needed class without true examples in a group makes that group's UAR NaN ("nan") or
        is left out of its mean ("skip").

    Returns
    -------
    pandas.Series
        UAR per group, indexed by group.
    """
    _check_absent(absent_class)
    enc = encode(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        labels=labels,
        group_order=group_order,
    )
    required = enc.required if absent_class == "nan" else None
    uar_g = core_metrics(group_counts(enc), pos=None, required=required)["uar_g"]
    return pd.Series(uar_g, index=pd.Index(enc.groups, name="group"), name="uar")
