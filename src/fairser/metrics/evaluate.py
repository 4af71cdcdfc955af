"""One call that turns a test set's predictions into every reported metric with its interval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fairser.metrics._core import MetricError, as_1d
from fairser.metrics.bootstrap import speaker_bootstrap

__all__ = ["EVALUATION_KEYS", "evaluate_predictions"]

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
}


def evaluate_predictions(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    speakers: Any,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    group_order: Sequence = ("M", "F"),
    labels: Sequence | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
    min_speakers: int = 2,
) -> dict[str, float | int]:
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
        and ``<metric>_hi`` for ``uar``, ``uar_m``, ``uar_f``, ``dsp``, ``tpr_gap``,
        ``fpr_gap``, ``deo_max`` and ``deo_sum``. Counts are int, everything else float.

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
    return out
