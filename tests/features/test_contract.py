"""The frontend contract, checked for every registered frontend (registering one tests it).

``hf:`` is checked with tiny random wav2vec2 and Whisper models saved to a temporary folder
(no download).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from fairser._hashing import config_hash
from fairser.features import FRONTENDS, Frontend, build_frontend
from fairser.features.base import Runtime

CASES = [*FRONTENDS, "hf:wav2vec2", "hf:whisper"]


def _signal(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory: pytest.TempPathFactory, save_hf_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract-hf")
    return {kind: save_hf_model(root / kind, kind) for kind in ("wav2vec2", "whisper")}


def _build(case: str, folders: dict[str, Path]) -> Frontend:
    name = f"hf:{folders[case[3:]]}" if case.startswith("hf:") else case
    return build_frontend(name, layers="all")


@pytest.mark.parametrize("case", CASES)
def test_frontend_contract(case: str, hf_folders: dict[str, Path]) -> None:
    fresh = _build(case, hf_folders)
    blob = pickle.dumps(fresh)  # picklable before load(): workers receive it this way
    fe = _build(case, hf_folders)

    # config(): plain JSON, stable, and the store key is its one hash
    cfg = fe.config()
    assert json.loads(json.dumps(cfg, sort_keys=True)) == cfg
    assert fe.key() == config_hash(cfg) == _build(case, hf_folders).key()
    clone = pickle.loads(blob)
    assert clone.key() == fe.key() and clone.layers == fe.layers
    if fe.n_layers > 1:
        assert fe.with_layers([0]).key() != fe.key()
    if fe.accelerated:  # precision is part of the key; fp32 is the default runtime
        assert fe.runtime == Runtime() and fe.with_runtime(Runtime(precision="bf16")).key() \
            != fe.key()
    assert fe.name and fe.sample_rate > 0 and fe.frame_rate >= 0 and fe.dim > 0
    assert fe.layers == tuple(range(fe.n_layers))

    x = _signal()
    (out,) = fe.compute([x])
    n_layers, n_frames, dim = out.shape
    assert (n_layers, dim) == (len(fe.layers), fe.dim)
    if fe.frame_rate == 0:
        assert n_frames == 1
    else:  # 1 s of audio: frame_rate frames, up to edge effects of the analysis window
        assert abs(n_frames - fe.frame_rate) <= 0.05 * fe.frame_rate + 2, (n_frames,
                                                                             fe.frame_rate)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    (again,) = fe.compute([x])
    np.testing.assert_array_equal(again, out)  # deterministic
    (from_clone,) = clone.compute([x])
    np.testing.assert_allclose(from_clone, out, rtol=1e-5, atol=1e-5)
