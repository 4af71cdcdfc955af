"""Why a metric is NaN: one short reason per undefined value, so no number is silently wrong.

A metric is undefined on a test set when the data cannot support it:

- UAR needs true examples of every class of the task (a binary test set without positives,
  boredom on CASIA, would otherwise report its specificity);
- a per-group UAR needs rows of that group with every class;
- a gap needs two groups with the rate defined: rows for the selection rate (dSP), true
  examples of the class for the true-positive rate, other classes for the false-positive rate;
  equalized odds needs both of its gaps;
- nothing is defined when the scores behind the predictions were not finite.

The reasons are plain sentences keyed like the metrics (``uar``, ``uar_m``, ``dsp`` ...);
:func:`fairser.metrics.evaluate_predictions` returns them as ``<metric>_note`` keys ("" when the
metric is defined) and the report shows such cells as "n/a" with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fairser.metrics._core import core_metrics, encode, group_counts
from fairser.metrics._resample import FAIRNESS

__all__ = ["NOTE_SUFFIX", "reasons_from_counts", "undefined_reasons"]

#: Suffix of the key (or results column) holding the reason a metric is undefined.
NOTE_SUFFIX = "_note"


def _names(classes: Sequence[Any]) -> str:
    shown = [str(c) for c in classes]
    return ", ".join(shown[:4]) + (f" and {len(shown) - 4} more" if len(shown) > 4 else "")


def _class_text(idx: Sequence[int], *, labels: Sequence[Any], pos: int | None, kind: str) -> str:
    """Name classes without true examples: 'positive' for a binary task, else the classes."""
    if pos is not None:
        if list(idx) == [pos]:
            return "positive" if kind == "true" else "negative"
        return "negative" if kind == "true" else "positive"
    return f"class {_names([labels[i] for i in idx])}"


def _gap_reason(
    defined: np.ndarray, groups: Sequence[Any], *, what: str, classes: list[int], pos: int | None
) -> str:
    """Reason a gap is NaN from a (G, C) mask of groups where its rate is defined."""
    lack = [str(g) for g, ok in zip(groups, defined[:, classes].any(axis=1), strict=True) if not ok]
    if pos is not None:
        if lack:
            who = " and ".join(lack)
            return f"no {what} examples among {who} rows: the gap needs two groups with them"
        return f"no {what} examples in two groups"
    return f"no class has {what} examples in two groups (one-vs-rest)"


def reasons_from_counts(
    counts: np.ndarray,
    *,
    groups: Sequence[Any],
    labels: Sequence[Any],
    pos: int | None,
    required: np.ndarray | None,
    average: str = "macro",
) -> dict[str, str]:
    """Reasons for every metric that is NaN on per-group confusion counts of shape (G, C, C).

    Parameters
    ----------
    counts : numpy.ndarray
        Confusion matrices per group (rows true class, columns predicted class).
    groups : sequence
        The groups, in index order (e.g. ``("M", "F")``).
    labels : sequence
        The classes, in index order (names are used in the reasons).
    pos : int or None
        Index of the positive class of a binary task, None for multi-class.
    required : numpy.ndarray of bool or None
        Classes UAR needs (see :func:`fairser.metrics._inputs.required_classes`).
    average : {"macro", "max"}, default "macro"
        Reduction of the multi-class gaps.

    Returns
    -------
    dict of str to str
        Metric name (``uar``, ``uar_<group>``, ``dsp``, ``tpr_gap``, ``fpr_gap``, ``deo_max``,
        ``deo_sum``) to its reason, for the metrics that are NaN only.
    """
    counts = np.asarray(counts)
    labels = list(labels)
    values = core_metrics(counts, pos=pos, average=average, required=required)
    true_n = counts.sum(axis=-1)  # (G, C) rows of each true class per group
    rows = true_n.sum(axis=-1)  # (G,)
    need = np.ones(len(labels), bool) if required is None else np.asarray(required, bool)
    out: dict[str, str] = {}
    if np.isnan(values["uar"]):
        absent = [c for c in range(len(labels)) if need[c] and true_n[:, c].sum() == 0]
        out["uar"] = (
            f"no {_class_text(absent, labels=labels, pos=pos, kind='true')} examples in this "
            "test set, so UAR (the mean recall over the classes) is undefined"
            if absent
            else "no class to average"
        )
    for gi, g in enumerate(groups):
        if not np.isnan(values["uar_g"][gi]):
            continue
        key = f"uar_{str(g).lower()}"
        absent = [c for c in range(len(labels)) if need[c] and true_n[gi, c] == 0]
        if rows[gi] == 0:
            out[key] = f"no {g} rows in this test set"
        else:
            text = _class_text(absent, labels=labels, pos=pos, kind="true")
            out[key] = f"no {text} examples among {g} rows: UAR within {g} is undefined"
    present = [str(g) for g, n in zip(groups, rows, strict=True) if n > 0]
    if len(present) < 2:
        only = f"only {present[0]} rows" if present else "no rows"
        for name in FAIRNESS:
            out[name] = f"{only} in this test set: a gap needs two groups"
        return out
    classes = [pos] if pos is not None else list(range(len(labels)))
    has_pos = true_n > 0
    has_neg = (rows[:, None] - true_n) > 0
    pos_word = "positive" if pos is not None else "true"
    neg_word = "negative" if pos is not None else "other-class"
    tpr = _gap_reason(has_pos, groups, what=pos_word, classes=classes, pos=pos)
    fpr = _gap_reason(has_neg, groups, what=neg_word, classes=classes, pos=pos)
    if np.isnan(values["tpr_gap"]):
        out["tpr_gap"] = tpr
    if np.isnan(values["fpr_gap"]):
        out["fpr_gap"] = fpr
    for name in ("deo_max", "deo_sum"):
        if np.isnan(values[name]):
            parts = [out.get("tpr_gap"), out.get("fpr_gap")]
            why = "; ".join(p for p in parts if p) or "no class has both gaps defined"
            out[name] = f"equalized odds needs both rate gaps: {why}"
    if np.isnan(values["dsp"]):  # pragma: no cover - two populated groups define dSP
        out["dsp"] = "selection rates undefined"
    return out


def undefined_reasons(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    labels: Sequence | None = None,
    group_order: Sequence | None = None,
    average: str = "macro",
) -> dict[str, str]:
    """Why each headline metric of a test set is undefined (NaN); empty when all are defined.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    sensitive_features : array-like of shape (n,)
        Group of each row.
    pos_label : scalar, default 1
        Positive class of a binary task.
    labels : sequence, optional
        The classes of the task; default the union of ``y_true`` and ``y_pred``.
    group_order : sequence, optional
        The groups expected (e.g. ``("M", "F")``); a group without rows is reported.
    average : {"macro", "max"}, default "macro"
        Reduction of the multi-class gaps.

    Returns
    -------
    dict of str to str
        As :func:`reasons_from_counts`.
    """
    enc = encode(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        labels=labels,
        pos_label=pos_label,
        group_order=group_order,
    )
    return reasons_from_counts(
        group_counts(enc),
        groups=enc.groups,
        labels=enc.labels.tolist(),
        pos=enc.pos,
        required=enc.required,
        average=average,
    )
