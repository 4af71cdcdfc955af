"""Fixtures of the method contract tests: a small generated corpus pair with a planted gender
shortcut in the source and a fake feature store (``tests/training/pair_fakes.py``, fixed
seeds), and the tiny training options every contract fit uses."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

TRAINING_TESTS = Path(__file__).resolve().parents[1] / "training"
if str(TRAINING_TESTS) not in sys.path:
    sys.path.insert(0, str(TRAINING_TESTS))

from pair_fakes import FakeFeatures, make_pair  # noqa: E402

#: Tiny training options: one epoch per stage, a small network (a fit takes well under a second).
TINY = {
    "model": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "embed_dim": 16, "gc_hidden": 8},
    "stage1_epochs": 1,
    "stage2_epochs": 1,
    "patience": 2,
    "batch_size": 32,
    "frame_stride": 2,
    "num_threads": 1,
    "device": "cpu",
}


@pytest.fixture(scope="session")
def tiny_pair() -> tuple[pd.DataFrame, pd.DataFrame, FakeFeatures, dict]:
    """(source, target, features, training options) of every contract fit (do not mutate)."""
    return (*make_pair(seed=0, n_source=160, n_target=96, dim=8), TINY)
