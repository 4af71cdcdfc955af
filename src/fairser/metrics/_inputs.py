"""Metric inputs: validation, the binary/multi-class decision and integer coding.

Every metric turns its arguments into an :class:`Encoded` here: 1-D arrays without missing
values, one label type, the class list (given or inferred), whether the task is binary (and
its positive class), the group of each row, and the classes UAR needs (``required``: every
class of the task, except that an inferred multi-class list needs only the classes present in
``y_true``). Bad input raises :class:`MetricError` with a one-line message naming the argument,
the row and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairser.errors import FairserError

__all__ = ["Encoded", "MetricError", "as_1d", "encode", "required_classes", "resolve_labels"]


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
    required : numpy.ndarray of bool
        Classes UAR needs true examples of, shape (C,) (see :func:`required_classes`).
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    group: np.ndarray
    labels: np.ndarray
    groups: tuple
    pos: int | None
    required: np.ndarray

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


def required_classes(
    y_true: np.ndarray, labels: np.ndarray, *, explicit: bool, pos: int | None
) -> np.ndarray:
    """Classes whose recall UAR needs, as a mask over ``labels``.

    Every class of the task when the class list is known: given explicitly (``explicit``) or
    binary (both classes of a 0/1 or ``pos_label`` task). An inferred multi-class list is the
    union of ``y_true`` and ``y_pred``; a class only predicted is not a class of the test set
    (scikit-learn's ``balanced_accuracy_score`` skips it too), so only the classes of ``y_true``
    are needed. A needed class without true examples makes UAR undefined (NaN), never the
    mean of the other recalls: with no positives, a binary UAR would be the specificity.

    Parameters
    ----------
    y_true : numpy.ndarray
        True labels (not coded).
    labels : numpy.ndarray
        The class list in index order.
    explicit : bool
        Whether the caller gave the class list.
    pos : int or None
        Index of the positive class of a binary task, else None.

    Returns
    -------
    numpy.ndarray of bool, shape (C,)
    """
    if explicit or pos is not None:
        return np.ones(len(labels), dtype=bool)
    return np.isin(labels, y_true)


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
    need = required_classes(yt, cls, explicit=labels is not None, pos=pos)
    return Encoded(y_true=t, y_pred=p, group=g, labels=cls, groups=grp, pos=pos, required=need)
