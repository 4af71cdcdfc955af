"""GroupThresholds: label-free parity thresholds (binary), offsets (multi-class), strength."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fairser.decision import decide
from fairser.levers import GroupThresholds, LeverError, load_lever, save_lever
from fairser.metrics import demographic_parity_difference


def _binary(seed: int = 0, n: int = 600):
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n) < 0.4, "F", "M")
    logit = rng.normal(size=n) + np.where(gender == "F", 0.8, -0.4)  # F scored higher
    return 1 / (1 + np.exp(-logit)), gender


def test_binary_thresholds_equalise_positive_rates_at_the_plain_overall_rate() -> None:
    scores, gender = _binary()
    plain = decide(scores)
    assert demographic_parity_difference(plain, plain, sensitive_features=gender) > 0.2
    lever = GroupThresholds().fit(scores, groups=gender)
    pred = lever.predict(scores, groups=gender)
    np.testing.assert_array_equal(
        pred, decide(scores, group_thresholds=lever.thresholds, groups=gender))
    assert lever.rate == pytest.approx(plain.mean())
    assert abs(pred.mean() - plain.mean()) < 0.01
    assert demographic_parity_difference(pred, pred, sensitive_features=gender) < 0.01
    assert lever.thresholds["F"] > 0.5 > lever.thresholds["M"]


def test_strength_moves_thresholds_part_way_and_target_rate() -> None:
    scores, gender = _binary(1)
    full = GroupThresholds().fit(scores, groups=gender).thresholds
    half = GroupThresholds(strength=0.5).fit(scores, groups=gender).thresholds
    off = GroupThresholds(strength=0.0).fit(scores, groups=gender)
    for g in ("F", "M"):
        assert half[g] == pytest.approx((0.5 + full[g]) / 2)
    np.testing.assert_array_equal(off.predict(scores, groups=gender), decide(scores))
    fixed = GroupThresholds(target_rate=0.25).fit(scores, groups=gender)
    pred = fixed.predict(scores, groups=gender)
    for g in ("F", "M"):
        assert abs(pred[gender == g].mean() - 0.25) < 0.01


def test_edge_rates_unknown_and_missing_groups() -> None:
    scores, gender = _binary(2, n=50)
    none = GroupThresholds(target_rate=0.0).fit(scores, groups=gender)
    assert none.predict(scores, groups=gender).sum() == 0
    every = GroupThresholds(target_rate=1.0).fit(scores, groups=gender)
    assert every.predict(scores, groups=gender).all()
    groups = gender.astype(object)
    groups[:5] = "<NA>"
    lever = GroupThresholds().fit(scores, groups=groups)
    assert lever.groups == ["F", "M"]
    other = np.array(["X"] * 50)  # unseen group: the plain rule
    np.testing.assert_array_equal(lever.predict(scores, groups=other), decide(scores))


def _multiclass(seed: int = 3, n: int = 900, c: int = 4):
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n) < 0.5, "F", "M")
    logits = rng.normal(size=(n, c))
    logits[gender == "F", 0] += 1.0  # F pushed towards class 0
    logits[gender == "M", 2] += 0.7
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), gender


def test_multiclass_offsets_match_each_groups_class_distribution() -> None:
    probs, gender = _multiclass()
    plain = decide(probs)
    assert demographic_parity_difference(plain, plain, sensitive_features=gender,
                                         average="max") > 0.15
    lever = GroupThresholds().fit(probs, groups=gender)
    pred = lever.predict(probs, groups=gender)
    np.testing.assert_array_equal(pred, decide(lever.adjust(probs, groups=gender)))
    assert demographic_parity_difference(pred, pred, sensitive_features=gender,
                                         average="max") < 0.03
    overall = np.bincount(plain, minlength=4) / len(plain)
    np.testing.assert_allclose(np.bincount(pred, minlength=4) / len(pred), overall, atol=0.03)
    with pytest.raises(LeverError, match="binary scores only"):
        _ = lever.thresholds
    off = GroupThresholds(strength=0.0).fit(probs, groups=gender)
    np.testing.assert_array_equal(off.predict(probs, groups=gender), plain)


def test_round_trip_binary_and_multiclass(tmp_path) -> None:
    for scores, gender in (_binary(4), _multiclass(5)):
        lever = GroupThresholds(strength=0.7).fit(scores, groups=gender)
        want = lever.predict(scores, groups=gender)
        again = GroupThresholds.from_dict(json.loads(json.dumps(lever.to_dict(lists=True))))
        loaded = load_lever(save_lever(lever, tmp_path / f"{lever.task}.safetensors"))
        for other in (again, loaded):
            assert isinstance(other, GroupThresholds) and other.task == lever.task
            np.testing.assert_array_equal(other.predict(scores, groups=gender), want)


def test_bad_input() -> None:
    scores, gender = _binary(6, n=20)
    with pytest.raises(LeverError, match="not fitted"):
        GroupThresholds().predict(scores, groups=gender)
    with pytest.raises(LeverError, match="groups is required"):
        GroupThresholds().fit(scores, groups=None)
    with pytest.raises(LeverError, match="19 values for 20 scores"):
        GroupThresholds().fit(scores, groups=gender[:19])
    with pytest.raises(LeverError, match="NaN"):
        GroupThresholds().fit(np.r_[scores[:-1], np.nan], groups=gender)
    with pytest.raises(LeverError, match="no known group"):
        GroupThresholds().fit(scores, groups=["<NA>"] * 20)
    with pytest.raises(LeverError, match="target_rate=2"):
        GroupThresholds(target_rate=2)
    lever = GroupThresholds().fit(scores, groups=gender)
    with pytest.raises(LeverError, match="fitted on binary scores"):
        lever.predict(np.full((20, 3), 1 / 3), groups=gender)


def test_multiclass_offsets_match_nearly_flat_probabilities():
    """A strongly shrunk model spreads its log-probabilities over ~0.01: parity still holds."""
    rng = np.random.default_rng(3)
    n = 1200
    g = np.array(["M"] * 700 + ["F"] * 500)
    logits = rng.normal(size=(n, 4)) + np.where(g[:, None] == "M", [0.8, 0, 0, 0], [0, 0, 0.8, 0])
    flat = 0.01 * logits
    proba = np.exp(flat) / np.exp(flat).sum(axis=1, keepdims=True)
    thr = GroupThresholds().fit(proba, groups=g)
    labels = thr.adjust(proba, groups=g).argmax(axis=1)
    rates = {k: np.bincount(labels[g == k], minlength=4) / (g == k).sum() for k in ("M", "F")}
    assert np.abs(rates["M"] - rates["F"]).max() < 0.01, rates
