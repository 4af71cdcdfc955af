"""Fairness and accuracy metrics for speech emotion recognition (fairlearn conventions).

``y_true, y_pred`` are positional and ``sensitive_features=`` keyword-only, as in fairlearn.
Binary tasks (labels in {0, 1}) match fairlearn exactly; multi-class tasks are scored one-vs-
rest per class and reduced by ``average`` ("macro" or "max"). UAR is defined once
(:mod:`fairser.metrics.recall`). Undefined values are NaN, never a number that only looks
valid, and :func:`undefined_reasons` says why (see :mod:`fairser.metrics.undefined`).
Confidence intervals come from a speaker-level bootstrap (:func:`speaker_bootstrap`), method
comparisons from :func:`paired_bootstrap_test`, gender leakage from :func:`gender_probe` and
:func:`gc_accuracy`; :func:`evaluate_predictions` returns all of it as one dict, and
:func:`compare_methods` tests every method against a baseline from a table of stored
predictions. :func:`gap_null` (and :func:`gap_nulls` for a table) says whether a gender gap is
larger than reassigning the speakers' genders, or a classifier with equal error rates for both
genders, would measure on the same rows. :func:`pareto_front` picks the configurations no other
beats on accuracy and fairness.
"""

from __future__ import annotations

from fairser.metrics._core import MetricError
from fairser.metrics.bootstrap import (
    BootstrapResult,
    metric_names,
    paired_bootstrap_test,
    speaker_bootstrap,
)
from fairser.metrics.compare import PREDICTION_COLUMNS, compare_methods
from fairser.metrics.evaluate import CI_METRICS, EVALUATION_KEYS, evaluate_predictions
from fairser.metrics.fairness import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate_difference,
    group_rates,
    selection_rate_by_group,
    true_positive_rate_difference,
)
from fairser.metrics.null import NULL_COLUMNS, gap_null, gap_nulls
from fairser.metrics.pareto import pareto_front, pareto_mask
from fairser.metrics.probe import gc_accuracy, gender_probe, pool_frames
from fairser.metrics.recall import recall_by_group, uar_from_codes, unweighted_average_recall
from fairser.metrics.undefined import NOTE_SUFFIX, undefined_reasons

__all__ = [
    "CI_METRICS",
    "EVALUATION_KEYS",
    "NOTE_SUFFIX",
    "NULL_COLUMNS",
    "PREDICTION_COLUMNS",
    "BootstrapResult",
    "MetricError",
    "compare_methods",
    "demographic_parity_difference",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "evaluate_predictions",
    "false_positive_rate_difference",
    "gap_null",
    "gap_nulls",
    "gc_accuracy",
    "gender_probe",
    "group_rates",
    "metric_names",
    "paired_bootstrap_test",
    "pareto_front",
    "pareto_mask",
    "pool_frames",
    "recall_by_group",
    "selection_rate_by_group",
    "speaker_bootstrap",
    "true_positive_rate_difference",
    "uar_from_codes",
    "undefined_reasons",
    "unweighted_average_recall",
]
