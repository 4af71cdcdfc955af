"""Shared fixtures. Real corpora come only from ../shared/data; everything else is generated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data: fails loudly in CI when missing, skips elsewhere."""
    if not SHARED_DATA.is_dir():
        if _in_ci():
            pytest.fail(f"CI=true but the real corpora are missing at {SHARED_DATA}")
        pytest.skip(f"real corpora not found at {SHARED_DATA} (they exist in CI)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point FAIRSER_CACHE at a per-session temp folder so tests never touch ~/.cache."""
    if "FAIRSER_CACHE" not in os.environ or os.environ.get("FAIRSER_TEST_KEEP_CACHE") != "1":
        monkeypatch.setenv("FAIRSER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
