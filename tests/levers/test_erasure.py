"""GenderEraser (LEACE): linear gender information removed, strength, frames, round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from fairser.levers import GenderEraser, LeverError, load_lever, save_lever


def _data(seed: int = 0, n: int = 400, dim: int = 12):
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n) < 0.4, "F", "M")
    x = rng.normal(size=(n, dim))
    x[:, :3] += np.where(gender == "M", 1.5, -1.0)[:, None] * np.array([1.0, -0.5, 0.7])
    x[:, 5] += 3.0  # a non-zero mean the affine edit must keep
    return x, gender


def _linear_acc(x, gender) -> float:
    return float(cross_val_score(LogisticRegression(max_iter=2000), x, gender, cv=5,
                                 scoring="balanced_accuracy").mean())


def test_leace_removes_the_linear_gender_signal_and_keeps_the_rest() -> None:
    x, gender = _data()
    assert _linear_acc(x, gender) > 0.9
    eraser = GenderEraser().fit(x, sensitive_features=gender)
    erased = eraser.transform(x)
    assert erased.shape == x.shape and erased.dtype == np.float32
    assert _linear_acc(erased, gender) < 0.6
    means = [erased[gender == g].mean(axis=0) for g in ("F", "M")]
    np.testing.assert_allclose(means[0], means[1], atol=1e-6)  # class means coincide
    np.testing.assert_allclose(erased.mean(axis=0), x.mean(axis=0), atol=1e-5)  # affine
    assert eraser.rank == 1 and eraser.classes == ["F", "M"]
    np.testing.assert_allclose(erased[:, 6:], x[:, 6:], atol=0.5)  # small edit elsewhere


def test_strength_scales_the_edit() -> None:
    x, gender = _data(1)
    full = GenderEraser().fit(x, sensitive_features=gender)
    half = GenderEraser(strength=0.5).fit(x, sensitive_features=gender)
    off = GenderEraser(strength=0.0).fit(x, sensitive_features=gender)
    np.testing.assert_allclose(off.transform(x), x, atol=1e-5)
    np.testing.assert_allclose(half.transform(x), (x + full.transform(x)) / 2, atol=1e-5)
    with pytest.raises(LeverError, match="strength"):
        GenderEraser(strength=-0.1)


def test_frames_fit_and_apply_per_frame_vector() -> None:
    rng = np.random.default_rng(2)
    items, gender = [], []
    for i in range(60):
        g = "M" if i % 2 else "F"
        t = int(rng.integers(3, 7))
        frames = rng.normal(size=(2, t, 4))
        frames[1, :, 0] += 2.0 if g == "M" else -2.0
        items.append(frames)
        gender.append(g)
    eraser = GenderEraser().fit_frames(items, sensitive_features=gender)
    out = eraser.transform_frames(items)
    assert [o.shape for o in out] == [i.shape for i in items]
    # layer 0 carried no gender: barely touched; layer 1 dim 0: class means now equal
    pooled = np.stack([o[1, :, 0].mean() for o in out])
    g = np.asarray(gender)
    assert abs(pooled[g == "M"].mean() - pooled[g == "F"].mean()) < 0.2
    flat = eraser.transform(np.moveaxis(items[0], 1, 0).reshape(items[0].shape[1], -1))
    np.testing.assert_allclose(np.moveaxis(out[0], 1, 0).reshape(flat.shape), flat, atol=1e-6)


def test_three_groups_and_orth_method() -> None:
    x, _ = _data(3)
    groups = np.array(["a", "b", "c"] * (len(x) // 3) + ["a"] * (len(x) % 3))
    x[:, 0] += (groups == "b") * 2.0
    x[:, 1] += (groups == "c") * 2.0
    eraser = GenderEraser(method="orth").fit(x, sensitive_features=groups)
    assert eraser.rank == 2
    erased = eraser.transform(x)
    for g in ("b", "c"):
        np.testing.assert_allclose(erased[groups == g].mean(axis=0),
                                   erased[groups == "a"].mean(axis=0), atol=1e-6)


def test_round_trip(tmp_path) -> None:
    x, gender = _data(4)
    eraser = GenderEraser(strength=0.8).fit(x, sensitive_features=gender)
    want = eraser.transform(x)
    again = GenderEraser.from_dict(json.loads(json.dumps(eraser.to_dict(lists=True))))
    loaded = load_lever(save_lever(eraser, tmp_path / "e.safetensors"))
    for lever in (again, loaded):
        assert isinstance(lever, GenderEraser) and lever.strength == 0.8
        np.testing.assert_allclose(lever.transform(x), want, atol=1e-6)


def test_bad_input(tmp_path) -> None:
    x, gender = _data(5, n=20)
    with pytest.raises(LeverError, match="not fitted"):
        GenderEraser().transform(x)
    with pytest.raises(LeverError, match="only"):
        GenderEraser().fit(x, sensitive_features=["M"] * 20)
    with pytest.raises(LeverError, match="missing value '<NA>'"):
        GenderEraser().fit(x, sensitive_features=["M", "<NA>"] * 10)
    with pytest.raises(LeverError, match="19 values for 20 rows"):
        GenderEraser().fit(x, sensitive_features=gender[:19])
    eraser = GenderEraser().fit(x, sensitive_features=gender)
    with pytest.raises(LeverError, match="fitted on width 12"):
        eraser.transform(x[:, :5])
    with pytest.raises(LeverError, match="method='pca'"):
        GenderEraser(method="pca")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(LeverError, match="not a readable fairser lever"):
        load_lever(tmp_path / "junk.safetensors")
