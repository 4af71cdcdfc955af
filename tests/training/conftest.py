"""Helpers for training tests: a fake FeatureSet and a synthetic corpus pair with a planted
gender shortcut in the source (generated here, fixed seeds)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from pair_fakes import EMOTIONS, FakeFeatures, make_pair  # noqa: E402

__all__ = ["EMOTIONS", "FakeFeatures", "make_pair"]


@pytest.fixture(scope="session")
def pair_factory():
    """:func:`make_pair` itself, for tests that need another shape of synthetic pair."""
    return make_pair


@pytest.fixture(scope="session")
def small_pair():
    """A small synthetic pair (fast)."""
    return make_pair(seed=0, n_source=200, n_target=120, dim=12)


#: Small fast training options used across tests.
FAST = {
    "model": {"d_model": 32, "n_heads": 2, "ff_dim": 64, "embed_dim": 32, "gc_hidden": 16},
    "stage1_epochs": 4,
    "stage2_epochs": 3,
    "batch_size": 32,
    "frame_stride": 2,
    "num_threads": 1,
}


@pytest.fixture()
def fast_config() -> dict:
    """Fresh copy of :data:`FAST`."""
    import copy

    return copy.deepcopy(FAST)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A 48+48 utterance espeak-ng pair with log-mel features (skips if the layers are absent)."""
    synthetic = pytest.importorskip("fairser.corpora.synthetic")
    features = pytest.importorskip("fairser.features")
    cache = tmp_path_factory.getbasetemp() / "cache"
    cfg = synthetic.SynthConfig(utterances=48, speakers_per_gender=3)
    src, tgt = synthetic.generate_pair(cache / "synthetic", seed=0, config=cfg)
    feats = features.extract(
        pd.concat([src, tgt], ignore_index=True), "logmel", cache_dir=cache, progress=False
    )
    return src, tgt, feats
