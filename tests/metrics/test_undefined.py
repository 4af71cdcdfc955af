"""Undefined metrics are NaN with a reason, in evaluate_predictions and on their own."""

from __future__ import annotations

import numpy as np
import pytest

from fairser import metrics as fm
from fairser.metrics import CI_METRICS, MetricError


def _eval(y, p, g, s, **kw):
    return fm.evaluate_predictions(y, p, sensitive_features=g, speakers=s, n_boot=40, **kw)


def test_defined_metrics_have_empty_notes(binary_set) -> None:
    ts = binary_set
    out = _eval(ts.y_true, ts.y_pred, ts.gender, ts.speaker)
    assert all(out[f"{m}_note"] == "" for m in CI_METRICS)
    assert out["task"] == "binary" and out["n_classes"] == 2 and out["class_average"] == ""


def test_no_positives_in_the_target(binary_set) -> None:
    ts = binary_set
    y = np.zeros_like(ts.y_true)
    out = _eval(y, ts.y_pred, ts.gender, ts.speaker)
    for key in ("uar", "uar_m", "uar_f", "tpr_gap", "deo_max", "deo_sum"):
        assert np.isnan(out[key]) and np.isnan(out[f"{key}_lo"]) and np.isnan(out[f"{key}_hi"])
        assert "no positive examples" in out[f"{key}_note"], key
    assert "UAR" in out["uar_note"] and "among M rows" in out["uar_m_note"]
    # selection rates and false-positive rates exist without positives: still numbers
    assert np.isfinite(out["dsp"]) and out["dsp_note"] == ""
    assert np.isfinite(out["fpr_gap"]) and out["fpr_gap_note"] == ""


def test_one_gender_only(binary_set) -> None:
    ts = binary_set
    keep = ts.gender == "F"
    out = _eval(ts.y_true[keep], ts.y_pred[keep], ts.gender[keep], ts.speaker[keep])
    assert out["uar_m_note"] == "no M rows in this test set"
    assert out["uar_f_note"] == "" and np.isfinite(out["uar_f"])
    for key in ("dsp", "tpr_gap", "fpr_gap", "deo_max", "deo_sum"):
        assert np.isnan(out[key])
        assert out[f"{key}_note"].startswith("only F rows in this test set"), key


def test_one_group_without_positives_names_it() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0])
    p = np.array([1, 0, 0, 1, 1, 0, 0])
    sf = np.array(["M", "M", "M", "M", "F", "F", "F"])
    why = fm.undefined_reasons(y, p, sensitive_features=sf, group_order=["M", "F"])
    assert set(why) == {"uar_f", "tpr_gap", "deo_max", "deo_sum"}
    assert why["tpr_gap"].startswith("no positive examples among F rows")
    assert why["deo_max"].startswith("equalized odds needs both rate gaps: no positive")


def test_non_finite_scores_void_every_metric(binary_set) -> None:
    ts = binary_set
    scores = np.linspace(0, 1, len(ts.y_true))
    scores[[3, 9]] = [np.nan, np.inf]
    out = _eval(ts.y_true, ts.y_pred, ts.gender, ts.speaker, scores=scores)
    for key in CI_METRICS:
        assert np.isnan(out[key]) and np.isnan(out[f"{key}_lo"])
        assert out[f"{key}_note"].startswith("2 of 500 scores are not finite")
    fine = _eval(ts.y_true, ts.y_pred, ts.gender, ts.speaker, scores=np.zeros((500, 3)))
    assert np.isfinite(fine["uar"]) and fine["uar_note"] == ""
    with pytest.raises(MetricError, match="scores has shape"):
        _eval(ts.y_true, ts.y_pred, ts.gender, ts.speaker, scores=np.zeros(3))


def test_multiclass_reason_names_the_missing_class() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)  # class 3 of 4 never occurs
    p = rng.integers(0, 4, 120)
    g = np.repeat(["M", "F"], 60)
    s = np.array([f"{x}{i // 10}" for i, x in enumerate(g)])
    out = _eval(y, p, g, s, labels=[0, 1, 2, 3], class_names=["ang", "hap", "sad", "bor"])
    assert np.isnan(out["uar"]) and "class bor" in out["uar_note"]
    assert out["task"] == "multiclass" and out["n_classes"] == 4
    assert out["class_average"] == "macro"
    # one-vs-rest gaps skip the class nobody has: still defined
    assert np.isfinite(out["dsp"]) and np.isfinite(out["deo_max"])
    with pytest.raises(MetricError, match="class_names has 2 names for 4 classes"):
        _eval(y, p, g, s, labels=[0, 1, 2, 3], class_names=["a", "b"])
