"""Four-class predictions: evaluate_predictions gives one-vs-rest macro and max gaps as
documented, the bootstrap and paired comparisons accept them."""

from __future__ import annotations

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from fairser import metrics as fm


def _four_class(seed: int = 0, n_speakers: int = 16, utts: int = 30):
    rng = np.random.default_rng(seed)
    gender = np.repeat(np.array(["M", "F"] * (n_speakers // 2)), utts)
    speaker = np.repeat([f"s{i:02d}" for i in range(n_speakers)], utts)
    y = rng.integers(0, 4, len(gender))
    # males are recognised better, and class 2 is over-predicted for females
    right = rng.random(len(y)) < np.where(gender == "M", 0.7, 0.5)
    p = np.where(right, y, rng.integers(0, 4, len(y)))
    p = np.where((gender == "F") & (rng.random(len(y)) < 0.15), 2, p)
    return y, p, gender, speaker


@pytest.mark.parametrize("average", ["macro", "max"])
def test_evaluate_four_classes_one_vs_rest(average: str) -> None:
    y, p, g, s = _four_class()
    out = fm.evaluate_predictions(
        y, p, sensitive_features=g, speakers=s, n_boot=60, labels=[0, 1, 2, 3], average=average
    )
    per_class = {"dsp": [], "deo_max": [], "tpr_gap": [], "fpr_gap": []}
    for c in range(4):
        yc, pc = (y == c).astype(int), (p == c).astype(int)
        per_class["dsp"].append(flm.demographic_parity_difference(yc, pc, sensitive_features=g))
        per_class["deo_max"].append(flm.equalized_odds_difference(yc, pc, sensitive_features=g))
        per_class["tpr_gap"].append(flm.true_positive_rate_difference(yc, pc, sensitive_features=g))
        per_class["fpr_gap"].append(
            flm.false_positive_rate_difference(yc, pc, sensitive_features=g)
        )
    reduce = np.mean if average == "macro" else np.max
    for key, values in per_class.items():
        assert out[key] == pytest.approx(reduce(values), abs=1e-12), key
        assert out[f"{key}_lo"] <= out[f"{key}_hi"]
    assert out["deo_sum"] == pytest.approx(
        reduce(np.add(per_class["tpr_gap"], per_class["fpr_gap"])), abs=1e-12
    )
    assert out["uar"] == pytest.approx(balanced_accuracy_score(y, p))
    assert out["uar_m"] == pytest.approx(balanced_accuracy_score(y[g == "M"], p[g == "M"]))
    assert out["uar_m"] > out["uar_f"]
    assert out["task"] == "multiclass" and out["class_average"] == average
    assert out["n_classes"] == 4 and out["uar_note"] == "" and out["dsp_note"] == ""


def test_compare_methods_accepts_four_classes() -> None:
    y, p, g, s = _four_class(1)
    rng = np.random.default_rng(5)
    better = np.where(rng.random(len(y)) < 0.5, y, p)
    frames = []
    for method, pred in (("source-only", p), ("pa", better)):
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "utt_id": [f"u{i}" for i in range(len(y))],
                    "speaker": s,
                    "gender": g,
                    "y_true": y,
                    "y_pred": pred,
                    "emotion": "all",
                }
            )
        )
    table = fm.compare_methods(pd.concat(frames), n_boot=200, labels=[0, 1, 2, 3])
    uar = table.set_index("metric").loc["uar"]
    assert uar["method"] == "pa" and uar["baseline"] == "source-only"
    assert uar["difference"] > 0.1 and uar["p_value"] < 0.05
