"""evaluate_predictions: every documented key, values equal to the individual metrics."""

from __future__ import annotations

import numpy as np
import pytest

from fairser import metrics as fm
from fairser.metrics import EVALUATION_KEYS, MetricError

CI_METRICS = ("uar", "uar_m", "uar_f", "dsp", "tpr_gap", "fpr_gap", "deo_max", "deo_sum")


def _eval(ts, **kw):
    return fm.evaluate_predictions(
        ts.y_true, ts.y_pred, sensitive_features=ts.gender, speakers=ts.speaker, **kw
    )


def test_keys_are_documented_and_complete(binary_set) -> None:
    out = _eval(binary_set, n_boot=100)
    expected = set(EVALUATION_KEYS) | {f"{m}_{b}" for m in CI_METRICS for b in ("lo", "hi")}
    assert set(out) == expected
    for m in CI_METRICS:
        assert out[f"{m}_lo"] < out[f"{m}_hi"]
    assert out["uar_lo"] <= out["uar"] <= out["uar_hi"]


def test_values_agree_with_point_metrics(binary_set) -> None:
    ts = binary_set
    out = _eval(ts, n_boot=50)
    kw = {"sensitive_features": ts.gender}
    assert out["n"] == 500 and out["n_m"] + out["n_f"] == 500
    assert out["n_speakers"] == 20 and out["n_speakers_m"] == 10
    assert out["uar"] == pytest.approx(fm.unweighted_average_recall(ts.y_true, ts.y_pred))
    assert out["dsp"] == pytest.approx(fm.demographic_parity_difference(ts.y_true, ts.y_pred, **kw))
    assert out["tpr_gap"] == pytest.approx(
        fm.equal_opportunity_difference(ts.y_true, ts.y_pred, **kw)
    )
    assert out["deo_sum"] == pytest.approx(out["tpr_gap"] + out["fpr_gap"])
    assert out["n_boot"] == 50 and out["confidence"] == 0.95
    assert isinstance(out["n"], int) and isinstance(out["uar"], float)


def test_one_gender_missing_gives_nan_for_it_and_the_gaps(binary_set) -> None:
    ts = binary_set
    keep = ts.gender == "M"
    out = fm.evaluate_predictions(
        ts.y_true[keep],
        ts.y_pred[keep],
        sensitive_features=ts.gender[keep],
        speakers=ts.speaker[keep],
        n_boot=20,
    )
    assert out["n_f"] == 0 and np.isnan(out["uar_f"]) and np.isnan(out["dsp"])
    assert not np.isnan(out["uar_m"])


def test_unknown_gender_value_is_an_error(binary_set) -> None:
    ts = binary_set
    gender = ts.gender.copy()
    gender[7] = "U"
    with pytest.raises(MetricError, match="row 7 holds 'U'"):
        fm.evaluate_predictions(
            ts.y_true, ts.y_pred, sensitive_features=gender, speakers=ts.speaker
        )
