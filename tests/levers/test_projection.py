"""PrincipalSubspace: leading directions kept, deterministic, round trip, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fairser.levers import LeverError, PrincipalSubspace, load_lever, save_lever


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 8)) * np.array([5, 3, 1, 0.1, 0.1, 0.1, 0.1, 0.1]) + 7.0
    return x @ np.linalg.qr(rng.normal(size=(8, 8)))[0]  # rotated


def test_keeps_the_leading_directions() -> None:
    x = _data()
    sub = PrincipalSubspace(n_components=3).fit(x)
    z = sub.transform(x)
    assert z.shape == (300, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    assert sub.explained > 0.99
    v = z.var(axis=0)
    assert v[0] > v[1] > v[2] > 0.5
    again = PrincipalSubspace(n_components=3).fit(x).transform(x)
    np.testing.assert_array_equal(again, z)  # signs fixed: deterministic


def test_round_trip_and_bad_input(tmp_path) -> None:
    x = _data(1)
    sub = PrincipalSubspace(n_components=2).fit(x)
    want = sub.transform(x)
    for lever in (PrincipalSubspace.from_dict(json.loads(json.dumps(sub.to_dict(lists=True)))),
                  load_lever(save_lever(sub, tmp_path / "p.safetensors"))):
        np.testing.assert_allclose(lever.transform(x), want, atol=1e-5)
    with pytest.raises(LeverError, match="not fitted"):
        PrincipalSubspace().transform(x)
    with pytest.raises(LeverError, match="n_components=9 exceeds"):
        PrincipalSubspace(n_components=9).fit(x)
    with pytest.raises(LeverError, match="width 8"):
        sub.transform(x[:, :3])
    with pytest.raises(LeverError, match="n_components=0"):
        PrincipalSubspace(n_components=0)
