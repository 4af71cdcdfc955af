"""One call that turns a test set's predictions into every reported metric with its interval.

Every metric comes with a ``<metric>_note`` key: "" when the metric is defined, else the reason
it is NaN (see :mod:`fairser.metrics.undefined`), so a results table never holds a number that
is silently wrong and never a NaN without its explanation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fairser.metrics._core import MetricError, as_1d, encode, group_counts
from fairser.metrics.bootstrap import metric_names, speaker_bootstrap
from fairser.metrics.undefined import NOTE_SUFFIX, reasons_from_counts

__all__ = ["CI_METRICS", "EVALUATION_KEYS", "evaluate_predictions"]

#: Every key of :func:`evaluate_predictions` with the default ``group_order=("M", "F")``, and
#: its meaning. Interval keys ``<metric>_lo`` / ``<metric>_hi`` exist for every metric marked
#: "(CI)".
EVALUATION_KEYS: dict[str, str] = {
    "n": "number of utterances scored",
    "n_m": "utterances of male speakers",
    "n_f": "utterances of female speakers",
    "n_speakers": "distinct speakers",
    "n_speakers_m": "distinct male speakers",
    "n_speakers_f": "distinct female speakers",
    "uar": "unweighted average recall (mean per-class recall, chance 1/C) over all rows (CI)",
    "uar_m": "UAR within the male speakers' rows (CI)",
    "uar_f": "UAR within the female speakers' rows (CI)",
    "dsp": "statistical parity gap |P(y^=1|M) - P(y^=1|F)|; multi-class: one-vs-rest, "
    "reduced by `average` (CI)",
    "tpr_gap": "true-positive-rate gap |dTPR| = equal opportunity difference (CI)",
    "fpr_gap": "false-positive-rate gap |dFPR| (CI)",
    "deo_max": "equalized odds max(|dTPR|, |dFPR|), fairlearn's definition (CI)",
    "deo_sum": "equalized odds |dTPR| + |dFPR| (CI)",
    "n_boot": "number of speaker bootstrap resamples behind the intervals",
    "confidence": "coverage of the percentile intervals, e.g. 0.95",
    "task": "`binary` (one class against the rest) or `multiclass` (gaps one-vs-rest)",
    "n_classes": "number of classes of the task (2 for binary)",
    "class_average": "multi-class: how per-class gaps are reduced (`macro` or `max`); "
    "'' for binary",
    "uar_note": "why `uar` is NaN ('' when defined), e.g. no positive examples in the test set",
    "uar_m_note": "why `uar_m` is NaN ('' when defined)",
    "uar_f_note": "why `uar_f` is NaN ('' when defined)",
    "dsp_note": "why `dsp` is NaN ('' when defined), e.g. one gender only",
    "tpr_gap_note": "why `tpr_gap` is NaN ('' when defined)",
    "fpr_gap_note": "why `fpr_gap` is NaN ('' when defined)",
    "deo_max_note": "why `deo_max` is NaN ('' when defined)",
    "deo_sum_note": "why `deo_sum` is NaN ('' when defined)",
}

#: Metrics that get an interval (``_lo``/``_hi``) and a ``_note`` key, default genders.
CI_METRICS: tuple[str, ...] = metric_names(("M", "F"))


def evaluate_predictions(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    speakers: Any,
    scores: Any | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    group_order: Sequence = ("M", "F"),
    labels: Sequence | None = None,
    class_names: Sequence[str] | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
    min_speakers: int = 2,
) -> dict[str, float | int | str]:
    """Every headline metric of one test set, with speaker-bootstrap confidence intervals.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels (binary 0/1 for the paper's one-emotion-vs-rest tasks, or class labels).
    y_pred : array-like of shape (n,)
        Predicted labels.
    sensitive_features : array-like of shape (n,)
        Gender of each row, values from ``group_order``.
    speakers : array-like of shape (n,)
        Speaker of each row (the bootstrap resamples speakers within each gender).
    scores : array-like of shape (n,) or (n, C), optional
        The scores ``y_pred`` was decided from. If any is NaN or infinite the predictions are
        meaningless (a diverged model): every metric and bound is NaN and every note says so.
    n_boot : int, default 1000
        Bootstrap resamples; 0 skips the intervals (their keys are NaN).
    seed : int, default 0
        Seed of the resampling.
    confidence : float, default 0.95
        Coverage of the percentile intervals.
    group_order : sequence, default ("M", "F")
        The genders. Per-group keys are ``<key>_<group lower-cased>``; a gender absent from
        the data gives NaN for its UAR and for every gap.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    class_names : sequence of str, optional
        Display names of the classes (same order as ``labels``), used in the notes only.
    pos_label : scalar, default 1
        Positive class of a binary task.
    average : {"macro", "max"}, default "macro"
        Multi-class only: reduce the one-vs-rest gaps by their mean or their maximum.
    min_speakers : int, default 2
        Speakers a gender needs for its intervals; with fewer, the affected ``_lo``/``_hi``
        keys are NaN (see :func:`fairser.metrics.speaker_bootstrap`).

    Returns
    -------
    dict
        The keys of :data:`EVALUATION_KEYS` (with the default genders) plus ``<metric>_lo``
        and ``<metric>_hi`` for each of :data:`CI_METRICS`. Counts are int, ``task``,
        ``class_average`` and the ``_note`` keys str, everything else float.

    Raises
    ------
    MetricError
        On inconsistent inputs (see :func:`fairser.metrics.speaker_bootstrap`).
    """
    order = list(group_order)
    boot = speaker_bootstrap(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        speakers=speakers,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        group_order=order,
        labels=labels,
        pos_label=pos_label,
        average=average,
        min_speakers=min_speakers,
    )
    sf = as_1d(sensitive_features, name="sensitive_features")
    spk = as_1d(speakers, name="speakers").astype(str)
    if len(spk) != len(sf):  # pragma: no cover - speaker_bootstrap checks first
        raise MetricError("speakers and sensitive_features differ in length; pass one per row")
    out: dict[str, float | int] = {"n": len(sf)}
    for g in order:
        out[f"n_{str(g).lower()}"] = int(np.sum(sf == g))
    out["n_speakers"] = int(np.unique(spk).size)
    for g in order:
        out[f"n_speakers_{str(g).lower()}"] = int(boot.n_speakers[g])
    out.update(boot.to_dict())
    out["n_boot"] = boot.n_boot
    out["confidence"] = float(confidence)
    enc = encode(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        labels=labels,
        pos_label=pos_label,
        group_order=order,
    )
    binary = enc.pos is not None
    out["task"] = "binary" if binary else "multiclass"
    out["n_classes"] = enc.n_classes
    out["class_average"] = "" if binary else str(average)
    names = enc.labels.tolist()
    if class_names is not None:
        if len(class_names) != len(names):
            raise MetricError(
                f"class_names has {len(class_names)} names for {len(names)} classes "
                f"{names}; pass one name per class"
            )
        names = list(class_names)
    reasons = reasons_from_counts(
        group_counts(enc),
        groups=enc.groups,
        labels=names,
        pos=enc.pos,
        required=enc.required,
        average=average,
    )
    bad = _non_finite(scores, len(sf))
    for name in boot.estimate:
        if bad:
            out[name] = out[f"{name}_lo"] = out[f"{name}_hi"] = float("nan")
            reasons[name] = bad
        out[f"{name}{NOTE_SUFFIX}"] = reasons.get(name, "")
    return out


def _non_finite(scores: Any | None, n: int) -> str:
    """The reason to void every metric when ``scores`` hold NaN/inf, else ""."""
    if scores is None:
        return ""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] != n:
        raise MetricError(
            f"scores has shape {values.shape} but there are {n} rows; pass (n,) or (n, C)"
        )
    bad = ~np.isfinite(values)
    if values.ndim == 2:
        bad = bad.any(axis=1)
    k = int(bad.sum())
    if not k:
        return ""
    return f"{k} of {n} scores are not finite (NaN/inf): the predictions are invalid"
