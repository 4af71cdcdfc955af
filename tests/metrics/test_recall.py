"""UAR defined once: undefined without examples of a class, the fast code path agrees."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from fairser import metrics as fm
from fairser.metrics import MetricError


def test_binary_without_positives_is_undefined_not_specificity() -> None:
    # boredom on CASIA: no positive example; 7 of 8 negatives predicted right
    y = np.zeros(8, dtype=int)
    p = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    assert np.isnan(fm.unweighted_average_recall(y, p))
    assert np.isnan(fm.uar_from_codes(y, p))
    # the lenient form is the specificity, which is what used to be printed as "UAR"
    assert fm.unweighted_average_recall(y, p, absent_class="skip") == pytest.approx(7 / 8)
    assert fm.uar_from_codes(y, p, absent_class="skip") == pytest.approx(7 / 8)


def test_all_zero_labels_and_predictions_are_still_a_binary_task() -> None:
    y = p = np.zeros(5, dtype=int)
    assert np.isnan(fm.unweighted_average_recall(y, p))
    assert np.isnan(fm.uar_from_codes(y, p))


def test_given_class_without_examples_makes_multiclass_uar_undefined() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    assert fm.unweighted_average_recall(y, p) == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert np.isnan(fm.unweighted_average_recall(y, p, labels=[0, 1, 2, 3]))
    assert np.isnan(fm.uar_from_codes(y, p, n_classes=4))
    skip = fm.unweighted_average_recall(y, p, labels=[0, 1, 2, 3], absent_class="skip")
    assert skip == pytest.approx(balanced_accuracy_score(y, p))


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_codes_path_equals_label_path(n_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, 300)
    p = np.where(rng.random(300) < 0.5, y, rng.integers(0, n_classes, 300))
    full = fm.unweighted_average_recall(y, p, labels=list(range(n_classes)))
    assert fm.uar_from_codes(y, p, n_classes=n_classes) == pytest.approx(full, abs=1e-12)
    assert fm.uar_from_codes(y, p) == pytest.approx(fm.unweighted_average_recall(y, p))
    assert full == pytest.approx(balanced_accuracy_score(y, p))


def test_codes_path_checks_its_input() -> None:
    with pytest.raises(MetricError, match="integer class codes"):
        fm.uar_from_codes(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(MetricError, match="codes must lie in"):
        fm.uar_from_codes(np.array([0, 3]), np.array([0, 1]), n_classes=3)
    with pytest.raises(MetricError, match="one length"):
        fm.uar_from_codes(np.array([0, 1]), np.array([0]))
    with pytest.raises(MetricError, match="absent_class='drop'"):
        fm.uar_from_codes(np.array([0, 1]), np.array([0, 1]), absent_class="drop")
    assert np.isnan(fm.uar_from_codes(np.array([], dtype=int), np.array([], dtype=int)))


def test_group_uar_is_undefined_where_a_group_lacks_a_class() -> None:
    y = np.array([1, 0, 1, 0, 0, 0])
    p = np.array([1, 0, 0, 0, 1, 0])
    sf = np.array(["M", "M", "M", "M", "F", "F"])
    rec = fm.recall_by_group(y, p, sensitive_features=sf)
    assert np.isnan(rec["F"]) and rec["M"] == pytest.approx((0.5 + 1.0) / 2)
    lenient = fm.recall_by_group(y, p, sensitive_features=sf, absent_class="skip")
    assert lenient["F"] == pytest.approx(0.5)
    rates = fm.group_rates(y, p, sensitive_features=sf)
    assert np.isnan(rates.loc["F", "uar"])
