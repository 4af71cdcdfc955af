"""QuadraticGenderEraser: genders' means and covariances matched; strength; round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fairser.levers import LeverError, QuadraticGenderEraser, load_lever, save_lever


def _data(seed: int = 0, n: int = 600, dim: int = 6):
    """Genders with equal means but different spreads: invisible to a linear probe."""
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n) < 0.4, "F", "M")
    scale = np.where(gender == "F", 2.0, 0.5)[:, None]
    x = rng.normal(size=(n, dim)) * np.r_[scale.T, np.ones((dim - 1, n))].T
    return x, gender


def test_means_and_covariances_of_the_genders_coincide() -> None:
    x, gender = _data()
    f, m = (x[gender == g] for g in ("F", "M"))
    assert np.var(f[:, 0]) / np.var(m[:, 0]) > 8
    eraser = QuadraticGenderEraser(shrinkage=False).fit(x, sensitive_features=gender)
    out = eraser.transform(x, groups=gender)
    assert out.shape == x.shape and out.dtype == np.float32
    f, m = (out[gender == g].astype(np.float64) for g in ("F", "M"))
    np.testing.assert_allclose(f.mean(axis=0), m.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(np.cov(f.T), np.cov(m.T), atol=0.05)


def test_strength_unknown_groups_and_round_trip(tmp_path) -> None:
    x, gender = _data(1)
    full = QuadraticGenderEraser().fit(x, sensitive_features=gender)
    half = QuadraticGenderEraser(strength=0.5).fit(x, sensitive_features=gender)
    np.testing.assert_allclose(half.transform(x, groups=gender),
                               (x + full.transform(x, groups=gender)) / 2, atol=1e-5)
    groups = gender.astype(object)
    groups[:7] = "<NA>"
    out = full.transform(x, groups=groups)
    np.testing.assert_allclose(out[:7], x[:7], atol=1e-6)
    assert full.last_unchanged == 7
    want = full.transform(x, groups=gender)
    again = QuadraticGenderEraser.from_dict(json.loads(json.dumps(full.to_dict(lists=True))))
    loaded = load_lever(save_lever(full, tmp_path / "q.safetensors"))
    for lever in (again, loaded):
        assert isinstance(lever, QuadraticGenderEraser)
        np.testing.assert_allclose(lever.transform(x, groups=gender), want, atol=1e-6)


def test_bad_input() -> None:
    x, gender = _data(2, n=30)
    with pytest.raises(LeverError, match="not fitted"):
        QuadraticGenderEraser().transform(x, groups=gender)
    with pytest.raises(LeverError, match="two or more groups"):
        QuadraticGenderEraser().fit(x, sensitive_features=["M"] * 30)
    with pytest.raises(LeverError, match="missing value"):
        QuadraticGenderEraser().fit(x, sensitive_features=["M", "<NA>"] * 15)
    eraser = QuadraticGenderEraser().fit(x, sensitive_features=gender)
    with pytest.raises(LeverError, match="29 values for 30 rows"):
        eraser.transform(x, groups=gender[:29])
    with pytest.raises(LeverError, match="width 6"):
        eraser.transform(x[:, :2], groups=gender)
