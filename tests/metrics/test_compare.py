"""compare_methods: paired tests against a baseline from a long predictions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairser import metrics as fm
from fairser.metrics import MetricError


def _predictions(ts, preds: dict[tuple[str, str, int], np.ndarray]) -> pd.DataFrame:
    frames = []
    for (method, sweep, seed), y_pred in preds.items():
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "sweep": sweep,
                    "seed": seed,
                    "corpus": "casia",
                    "role": "target",
                    "emotion": "angry",
                    "utt_id": [f"u{i:04d}" for i in range(ts.y_true.size)],
                    "speaker": ts.speaker,
                    "gender": ts.gender,
                    "y_true": ts.y_true,
                    "y_pred": y_pred,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_matches_direct_paired_test_and_averages_seeds(binary_set) -> None:
    ts = binary_set
    rng = np.random.default_rng(0)
    good = [np.where(rng.random(ts.y_true.size) < 0.85, ts.y_true, 1 - ts.y_true) for _ in range(2)]
    preds = {
        ("source-only", "", 0): ts.y_pred,
        ("source-only", "", 1): 1 - ts.y_pred,
        ("pa-cfa", "alpha=0.1", 0): good[0],
        ("pa-cfa", "alpha=0.1", 1): good[1],
        ("pa", "", 0): ts.y_pred,
    }
    table = fm.compare_methods(_predictions(ts, preds), n_boot=200, seed=3)
    assert set(table["method"]) == {"pa-cfa", "pa"}
    assert list(table.columns[:3]) == ["corpus", "role", "emotion"]
    cfa = table[table["method"] == "pa-cfa"].set_index("metric")
    direct = fm.paired_bootstrap_test(
        ts.y_true,
        np.stack(good),
        np.stack([ts.y_pred, 1 - ts.y_pred]),
        sensitive_features=ts.gender,
        speakers=ts.speaker,
        metrics=["uar", "dsp", "deo_max"],
        n_boot=200,
        seed=3,
        group_order=["M", "F"],
    )
    for col in ("a", "b", "difference", "lo", "hi", "p_value"):
        np.testing.assert_allclose(cfa[col].to_numpy(float), direct[col].to_numpy(float))
    assert (cfa["sweep"] == "alpha=0.1").all() and (cfa["runs_a"] == 2).all()
    assert cfa.loc["uar", "p_value"] < 0.05


def test_groups_without_baseline_are_skipped(binary_set) -> None:
    ts = binary_set
    df = _predictions(ts, {("pa", "", 0): ts.y_pred})
    out = fm.compare_methods(df, n_boot=10)
    assert out.empty and "p_value" in out.columns


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.drop(columns=["speaker"]), "missing column(s) ['speaker']"),
        (lambda d: d.drop(index=d.index[-1]), "lacks 1 utterance(s) of the baseline"),
        (lambda d: pd.concat([d, d.iloc[-1:]]), "twice"),
        (
            lambda d: d.assign(y_true=np.where(d.index == d.index[-1], 9, d["y_true"])),
            "has y_true '9' but the baseline has",
        ),
    ],
)
def test_bad_predictions(binary_set, mutate, fragment) -> None:
    ts = binary_set
    df = _predictions(ts, {("source-only", "", 0): ts.y_pred, ("pa", "", 0): 1 - ts.y_pred})
    with pytest.raises(MetricError) as info:
        fm.compare_methods(mutate(df), n_boot=10)
    assert fragment in str(info.value) and "\n" not in str(info.value)
