"""Fixtures of the experiments tests; the fakes live in grid_fakes.py (importable by workers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # spawned workers inherit sys.path and import grid_fakes by name
    sys.path.insert(0, str(HERE))

from grid_fakes import EMOTIONS, FakeLayers, make_manifest  # noqa: E402


@pytest.fixture
def fake_layers() -> FakeLayers:
    """A fresh fake backend."""
    return FakeLayers()


@pytest.fixture
def small_settings() -> dict[str, Any]:
    """Config settings for the fake corpora: 2 methods x 2 emotions x 2 seeds."""
    return {"name": "fake", "source": "fake-source:/x", "targets": ["fake-target:/y"],
            "emotions": list(EMOTIONS), "run_emotions": ["angry", "happy"],
            "methods": ["source-only", "pa-cfa"], "seeds": [0, 1],
            "bootstrap": {"n_resamples": 0}}


@pytest.fixture
def manifest_factory():
    """:func:`make_manifest` (test files cannot import conftest under importlib mode)."""
    return make_manifest
