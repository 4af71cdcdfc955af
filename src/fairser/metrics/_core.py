"""Input checks, confusion counts and vectorised rates shared by every metric.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairser.errors import FairserError

Average = Literal["macro", "max"]


class MetricError(FairserError):
    """Inputs to a metric are inconsistent (lengths, missing labels, unknown groups)."""


@dataclass(frozen=True)
class Encoded:
    """Integer-coded inputs of a metric.

    Attributes
    ----------
    y_true, y_pred : numpy.ndarray
        Class indices into ``labels``, shape (n,).
    group : numpy.ndarray
        Group indices into ``groups``, shape (n,).
    labels : numpy.ndarray
        The class labels, in index order.
    groups : tuple
        The group values, in index order.
    pos : int or None
        Index of the positive class for a binary task, None for one-vs-rest multi-class.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    group: np.ndarray
    labels: np.ndarray
    groups: tuple
    pos: int | None

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.labels)


def as_1d(values: Any, *, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D object-free numpy array, refusing missing values.

    Parameters
    ----------
    values : array-like
        Labels, predictions, groups or speaker ids.
    name : str
        The argument name, used in error messages.

    Returns
    -------
    numpy.ndarray
        The values, shape (n,).

    Raises
    ------
    MetricError
        If the values are not one-dimensional or hold a missing value.
    """
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise MetricError(
                f"{name}: got a DataFrame with {values.shape[1]} columns; pass one column"
            )
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series | pd.Index):
        array = values.to_numpy(dtype=object)
    else:
        array = np.asarray(values)
    if array.ndim != 1:
        raise MetricError(f"{name}: expected a 1-D array, got shape {array.shape}; flatten it")
    missing = np.asarray(pd.isna(array), dtype=bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise MetricError(
            f"{name}: row {row} is missing ({int(missing.sum())} missing in all); "
            "drop rows without a value before computing metrics"
        )
    if array.dtype == object:
        array = _homogenise(array, name=name)
    return array


def _homogenise(array: np.ndarray, *, name: str) -> np.ndarray:
    """Turn an object array of one scalar kind into a typed array."""
    kinds = {type(v) for v in array}
    if kinds <= {str, np.str_}:
        return array.astype(str)
    if kinds <= {bool, np.bool_}:
        return array.astype(bool)
    if all(isinstance(v, int | np.integer | bool | np.bool_) for v in array):
        return array.astype(np.int64)
    if all(isinstance(v, int | float | np.integer | np.floating) for v in array):
        return array.astype(np.float64)
    names = sorted(k.__name__ for k in kinds)
    raise MetricError(
        f"{name}: mixes value types {names}; pass labels of one type (all str or all int)"
    )


def _unique(values: np.ndarray, *, name: str) -> np.ndarray:
    try:
        return np.unique(values)
    except TypeError as exc:  # pragma: no cover - guarded by _homogenise
        raise MetricError(f"{name}: values cannot be sorted ({exc}); use one label type") from exc


def _is_binary01(labels: np.ndarray) -> bool:
    if labels.dtype.kind == "b":
        return True
    if labels.dtype.kind in "iuf":
        return bool(np.isin(labels, [0, 1]).all())
    return False


def resolve_labels(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    labels: Sequence | None,
    pos_label: Any,
) -> tuple[np.ndarray, int | None]:
    """Decide the class list and whether the task is binary.

    The task is binary when the labels (given, or the union of ``y_true`` and ``y_pred``) are a
    subset of {0, 1} (then both 0 and 1 are classes), or when they are at most two values
    including ``pos_label`` and are either given explicitly or not numbers (e.g. ``"angry"`` /
    ``"rest"`` with ``pos_label="angry"``). Otherwise the task is multi-class and metrics are
    one-vs-rest per class: numeric multi-class labels that happen to show only two classes stay
    multi-class. Pass ``labels`` explicitly for multi-class tasks whose test set may lack a
    class.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray
        Labels and predictions.
    labels : sequence or None
        Explicit class list, or None to use the union of ``y_true`` and ``y_pred``.
    pos_label : scalar
        The positive class of a binary task.

    Returns
    -------
    labels : numpy.ndarray
        The classes in index order.
    pos : int or None
        Index of ``pos_label`` for a binary task, else None.
    """
    if labels is None:
        both = np.concatenate([y_true, y_pred]) if len(y_true) else y_true
        if y_true.dtype.kind != y_pred.dtype.kind and not (
            {y_true.dtype.kind, y_pred.dtype.kind} <= set("biuf")
        ):
            raise MetricError(
                f"y_true holds {y_true.dtype} values but y_pred holds {y_pred.dtype}; "
                "encode both with the same labels"
            )
        found = _unique(both, name="y_true/y_pred")
    else:
        found = as_1d(list(labels), name="labels")
        if len(set(found.tolist())) != len(found):
            raise MetricError("labels: holds duplicates; pass each class once")
    if _is_binary01(found) and pos_label in (0, 1):
        cls = np.array([0, 1], dtype=np.int64)
        return cls, int(pos_label)
    values = found.tolist()
    explicit = labels is not None or found.dtype.kind not in "biuf"
    if explicit and len(values) <= 2 and pos_label in values:
        return found, values.index(pos_label)
    return found, None


def _encode(values: np.ndarray, vocabulary: np.ndarray, *, name: str) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocabulary.tolist())}
    if values.dtype.kind == "b" and vocabulary.dtype.kind in "iu":
        values = values.astype(np.int64)
    try:
        return np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=len(values))
    except KeyError as exc:
        row = next(i for i, v in enumerate(values.tolist()) if v not in index)
        raise MetricError(
            f"{name}: row {row} holds {exc.args[0]!r}, not one of {vocabulary.tolist()}; "
            "add it to labels/group_order or drop the row"
        ) from None


def encode(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any | None = None,
    labels: Sequence | None = None,
    pos_label: Any = 1,
    group_order: Sequence | None = None,
) -> Encoded:
    """Validate and integer-code metric inputs.

    Parameters
    ----------
    y_true, y_pred : array-like
        Labels and predictions, same length.
    sensitive_features : array-like, optional
        Group of each row; None puts every row in one group.
    labels : sequence, optional
        Explicit class list (see :func:`resolve_labels`).
    pos_label : scalar, default 1
        Positive class of a binary task.
    group_order : sequence, optional
        Expected groups in order; groups with no row get zero counts (their rates are NaN).
        Values of ``sensitive_features`` outside ``group_order`` are an error. Default: the sorted
        distinct values.

    Returns
    -------
    Encoded
        The coded inputs.
    """
    yt = as_1d(y_true, name="y_true")
    yp = as_1d(y_pred, name="y_pred")
    if len(yt) != len(yp):
        raise MetricError(
            f"y_true has {len(yt)} rows but y_pred has {len(yp)}; pass predictions for every row"
        )
    if len(yt) == 0:
        raise MetricError("y_true is empty; pass at least one row")
    cls, pos = resolve_labels(yt, yp, labels=labels, pos_label=pos_label)
    t = _encode(yt, cls, name="y_true")
    p = _encode(yp, cls, name="y_pred")
    if sensitive_features is None:
        g = np.zeros(len(yt), dtype=np.int64)
        grp: tuple = ("all",)
    else:
        sf = as_1d(sensitive_features, name="sensitive_features")
        if len(sf) != len(yt):
            raise MetricError(
                f"sensitive_features has {len(sf)} rows but y_true has {len(yt)}; "
                "pass one group per row"
            )
        if group_order is None:
            vocab = _unique(sf, name="sensitive_features")
        else:
            vocab = np.asarray(list(group_order))
            if len(set(vocab.tolist())) != len(vocab):
                raise MetricError("group_order: holds duplicates; pass each group once")
        g = _encode(sf, vocab, name="sensitive_features")
        grp = tuple(vocab.tolist())
    return Encoded(y_true=t, y_pred=p, group=g, labels=cls, groups=grp, pos=pos)


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


def core_metrics(
    counts: np.ndarray, *, pos: int | None, average: str | None = "macro"
) -> dict[str, np.ndarray]:
    """Every headline metric from per-group confusion counts of shape (..., G, C, C).

    Returns arrays of shape (...,): ``uar``, ``uar_g`` (shape (..., G)), ``dsp``, ``tpr_gap``,
    ``fpr_gap``, ``deo_max``, ``deo_sum``; fairness values reduce the class axis with
    :func:`aggregate_classes` after computing each class's gaps.
    """
    r = rates_from_counts(counts)
    uar = nanmean(r.recall_overall, axis=-1)
    uar_g = nanmean(r.tpr, axis=-1)
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
