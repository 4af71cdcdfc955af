"""Fairness and accuracy metrics for speech emotion recognition (fairlearn conventions).

``y_true, y_pred`` are positional and ``sensitive_features=`` keyword-only, as in fairlearn.
Binary tasks (labels in {0, 1}) match fairlearn exactly; multi-class tasks are scored
one-vs-rest per class and reduced by ``average`` ("macro" or "max"). Undefined rates are NaN
(see :mod:`fairser.metrics.fairness`). Confidence intervals come from a speaker-level bootstrap
(:func:`speaker_bootstrap`), method comparisons from :func:`paired_bootstrap_test`, gender
leakage from :func:`gender_probe` and :func:`gc_accuracy`; :func:`evaluate_predictions` returns
all of it as one dict, and :func:`compare_methods` tests every method against a baseline from a
table of stored predictions.
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
from fairser.metrics.evaluate import EVALUATION_KEYS, evaluate_predictions
from fairser.metrics.fairness import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate_difference,
    group_rates,
    recall_by_group,
    selection_rate_by_group,
    true_positive_rate_difference,
    unweighted_average_recall,
)
from fairser.metrics.probe import gc_accuracy, gender_probe, pool_frames

__all__ = [
    "EVALUATION_KEYS",
    "PREDICTION_COLUMNS",
    "BootstrapResult",
    "MetricError",
    "compare_methods",
    "demographic_parity_difference",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "evaluate_predictions",
    "false_positive_rate_difference",
    "gc_accuracy",
    "gender_probe",
    "group_rates",
    "metric_names",
    "paired_bootstrap_test",
    "pool_frames",
    "recall_by_group",
    "selection_rate_by_group",
    "speaker_bootstrap",
    "true_positive_rate_difference",
    "unweighted_average_recall",
]
