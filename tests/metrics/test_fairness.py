"""Point metrics against fairlearn and scikit-learn on random data, plus edge cases."""

from __future__ import annotations

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, recall_score

from fairser import metrics as fm
from fairser.errors import FairserError
from fairser.metrics import MetricError


def _random(seed: int, n: int = 400, n_groups: int = 2, n_classes: int = 2):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, n_classes, n))
    groups = np.array(["F", "M", "X", "Y"][:n_groups])
    sf = groups[rng.integers(0, n_groups, n)]
    return y_true, y_pred, sf


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_groups", [2, 3])
def test_binary_gaps_equal_fairlearn(seed: int, n_groups: int) -> None:
    y, p, sf = _random(seed, n_groups=n_groups)
    kw = {"sensitive_features": sf}
    assert fm.demographic_parity_difference(y, p, **kw) == pytest.approx(
        flm.demographic_parity_difference(y, p, **kw), abs=1e-12
    )
    assert fm.equalized_odds_difference(y, p, **kw) == pytest.approx(
        flm.equalized_odds_difference(y, p, **kw), abs=1e-12
    )
    assert fm.equalized_odds_difference(y, p, agg="sum", **kw) == pytest.approx(
        2 * flm.equalized_odds_difference(y, p, agg="mean", **kw), abs=1e-12
    )
    assert fm.equal_opportunity_difference(y, p, **kw) == pytest.approx(
        flm.equal_opportunity_difference(y, p, **kw), abs=1e-12
    )
    assert fm.true_positive_rate_difference(y, p, **kw) == pytest.approx(
        flm.true_positive_rate_difference(y, p, **kw), abs=1e-12
    )
    assert fm.false_positive_rate_difference(y, p, **kw) == pytest.approx(
        flm.false_positive_rate_difference(y, p, **kw), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(4))
def test_group_rates_equal_metricframe(seed: int) -> None:
    y, p, sf = _random(seed, n_groups=3)
    frame = flm.MetricFrame(
        metrics={
            "selection_rate": flm.selection_rate,
            "tpr": flm.true_positive_rate,
            "fpr": flm.false_positive_rate,
            "uar": balanced_accuracy_score,
            "n": flm.count,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=sf,
    ).by_group
    ours = fm.group_rates(y, p, sensitive_features=sf)
    for col in ["selection_rate", "tpr", "fpr", "uar", "n"]:
        np.testing.assert_allclose(ours[col].to_numpy(), frame[col].to_numpy(float), atol=1e-12)
    sel = fm.selection_rate_by_group(y, p, sensitive_features=sf)
    np.testing.assert_allclose(sel.to_numpy(), frame["selection_rate"].to_numpy(float))
    rec = fm.recall_by_group(y, p, sensitive_features=sf)
    np.testing.assert_allclose(rec.to_numpy(), frame["uar"].to_numpy(float))
    assert list(rec.index) == ["F", "M", "X"]


@pytest.mark.parametrize("n_classes", [2, 4, 7])
def test_uar_equals_macro_recall(n_classes: int) -> None:
    y, p, _ = _random(11, n_classes=n_classes)
    assert fm.unweighted_average_recall(y, p) == pytest.approx(
        recall_score(y, p, average="macro"), abs=1e-12
    )
    assert fm.unweighted_average_recall(y, p) == pytest.approx(balanced_accuracy_score(y, p))


def test_uar_skips_classes_only_predicted() -> None:
    y = np.array(["sad", "sad", "angry", "angry"])
    p = np.array(["sad", "happy", "angry", "sad"])
    # recall: sad 1/2, angry 1/2; "happy" never occurs in y_true
    assert fm.unweighted_average_recall(y, p) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(4))
def test_multiclass_one_vs_rest_equals_fairlearn_per_class(seed: int) -> None:
    y, p, sf = _random(seed, n=900, n_classes=4)
    per_class = {
        "dsp": fm.demographic_parity_difference(y, p, sensitive_features=sf, average=None),
        "eo": fm.equalized_odds_difference(y, p, sensitive_features=sf, average=None),
        "eo_sum": fm.equalized_odds_difference(
            y, p, sensitive_features=sf, average=None, agg="sum"
        ),
    }
    for c in range(4):
        yc, pc = (y == c).astype(int), (p == c).astype(int)
        assert per_class["dsp"][c] == pytest.approx(
            flm.demographic_parity_difference(yc, pc, sensitive_features=sf)
        )
        assert per_class["eo"][c] == pytest.approx(
            flm.equalized_odds_difference(yc, pc, sensitive_features=sf)
        )
        assert per_class["eo_sum"][c] == pytest.approx(
            2 * flm.equalized_odds_difference(yc, pc, sensitive_features=sf, agg="mean")
        )
    for key, fn in [
        ("dsp", fm.demographic_parity_difference),
        ("eo", fm.equalized_odds_difference),
    ]:
        assert fn(y, p, sensitive_features=sf) == pytest.approx(per_class[key].mean())
        assert fn(y, p, sensitive_features=sf, average="max") == pytest.approx(per_class[key].max())
    assert isinstance(per_class["dsp"], pd.Series)
    assert list(per_class["dsp"].index) == [0, 1, 2, 3]


def test_string_labels_binary_with_pos_label() -> None:
    y, p, sf = _random(5)
    names = np.array(["rest", "angry"])
    ours = fm.demographic_parity_difference(
        names[y], names[p], sensitive_features=sf, pos_label="angry"
    )
    assert ours == pytest.approx(flm.demographic_parity_difference(y, p, sensitive_features=sf))


def test_pandas_and_list_inputs_give_the_same_values() -> None:
    y, p, sf = _random(8)
    a = fm.equalized_odds_difference(y, p, sensitive_features=sf)
    b = fm.equalized_odds_difference(
        pd.Series(y), pd.Series(p), sensitive_features=pd.Series(sf, dtype="string")
    )
    c = fm.equalized_odds_difference(y.tolist(), p.tolist(), sensitive_features=sf.tolist())
    assert a == b == c


def test_group_without_positives_gives_nan_gaps() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0])
    p = np.array([1, 0, 0, 1, 1, 0, 0])
    sf = np.array(["M", "M", "M", "M", "F", "F", "F"])
    assert np.isnan(fm.true_positive_rate_difference(y, p, sensitive_features=sf))
    assert np.isnan(fm.equalized_odds_difference(y, p, sensitive_features=sf))
    assert np.isnan(fm.equalized_odds_difference(y, p, sensitive_features=sf, agg="sum"))
    # FPR is defined for both groups (M: 1/2, F: 1/3), selection rate too.
    assert fm.false_positive_rate_difference(y, p, sensitive_features=sf) == pytest.approx(1 / 6)
    assert fm.demographic_parity_difference(y, p, sensitive_features=sf) == pytest.approx(
        2 / 4 - 1 / 3
    )
    rates = fm.group_rates(y, p, sensitive_features=sf)
    assert np.isnan(rates.loc["F", "tpr"]) and rates.loc["M", "tpr"] == 0.5


def test_absent_group_in_group_order_is_nan() -> None:
    y, p, _ = _random(1, n=50)
    rec = fm.recall_by_group(y, p, sensitive_features=["M"] * 50, group_order=["M", "F"])
    assert list(rec.index) == ["M", "F"] and np.isnan(rec["F"]) and not np.isnan(rec["M"])


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (
            lambda: fm.demographic_parity_difference([1, 0], [1], sensitive_features=["M", "F"]),
            "but y_pred has 1",
        ),
        (
            lambda: fm.demographic_parity_difference([1, 0], [1, 0], sensitive_features=["M"]),
            "sensitive_features has 1 rows",
        ),
        (
            lambda: fm.demographic_parity_difference(
                [1, 0], [1, 0], sensitive_features=pd.Series(["M", None])
            ),
            "row 1 is missing",
        ),
        (
            lambda: fm.equalized_odds_difference(
                [1, 0], [1, 0], sensitive_features=["M", "F"], agg="mean"
            ),
            "agg='mean'",
        ),
        (
            lambda: fm.demographic_parity_difference(
                [0, 1, 2], [0, 1, 2], sensitive_features=list("MFM"), average="min"
            ),
            "average='min'",
        ),
        (
            lambda: fm.recall_by_group(
                [1, 0], [1, 0], sensitive_features=["M", "X"], group_order=["M", "F"]
            ),
            "row 1 holds 'X'",
        ),
        (
            lambda: fm.unweighted_average_recall([1, 0], [1, 2], labels=[0, 1]),
            "y_pred: row 1 holds 2",
        ),
        (
            lambda: fm.unweighted_average_recall(np.array([1, "a"], dtype=object), [1, 1]),
            "mixes value types",
        ),
        (lambda: fm.unweighted_average_recall([], []), "empty"),
        (lambda: fm.unweighted_average_recall(np.zeros((2, 2)), [1, 1]), "1-D"),
    ],
)
def test_bad_input_raises_one_line_metric_error(call, fragment: str) -> None:
    with pytest.raises(MetricError) as info:
        call()
    assert isinstance(info.value, FairserError)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_binary_or_multiclass_is_decided_by_the_labels() -> None:
    sf = ["M", "M", "F", "F", "M", "M", "F", "F"]
    # numeric multi-class labels that show only two classes stay one-vs-rest (macro over 1, 2)
    y, p = [1, 2, 1, 2, 1, 2, 1, 2], [1, 1, 2, 2, 1, 2, 1, 1]
    per_class = fm.true_positive_rate_difference(y, p, sensitive_features=sf, average=None)
    assert list(per_class.index) == [1, 2]
    assert per_class[1] == pytest.approx(0.5) and per_class[2] == pytest.approx(0.0)
    # ... unless the labels are given: then pos_label=1 makes it binary
    binary = fm.true_positive_rate_difference(y, p, sensitive_features=sf, labels=[1, 2])
    assert binary == pytest.approx(per_class[1])
    # string labels with pos_label are binary
    names = {1: "angry", 2: "rest"}
    s = fm.true_positive_rate_difference(
        [names[v] for v in y], [names[v] for v in p], sensitive_features=sf, pos_label="angry"
    )
    assert s == pytest.approx(binary)
