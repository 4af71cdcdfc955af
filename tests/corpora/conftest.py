"""Helpers for the corpus tests: tiny generated audio files laid out like the real corpora."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _write(path: Path, *, seconds: float = 0.1, sample_rate: int = 16000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(seed)
    sig = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    sf.write(str(path), sig.astype(np.float32), sample_rate, subtype="PCM_16", format=fmt)
    return path


@pytest.fixture
def write_audio() -> Callable[..., Path]:
    """Return ``write(path, *, seconds=0.1, sample_rate=16000)`` writing a short tone."""
    return _write


@pytest.fixture
def make_files() -> Callable[[Path, Iterable[str]], list[Path]]:
    """Return ``make(root, relative_paths)`` writing a short tone at every path."""

    def make(root: Path, rels: Iterable[str], *, seconds: float = 0.1) -> list[Path]:
        return [_write(root / rel, seconds=seconds, seed=i) for i, rel in enumerate(rels)]

    return make


@pytest.fixture
def ravdess_root(tmp_path: Path, make_files) -> Path:
    """A RAVDESS-like tree: 6 actors (3 M, 3 F), 8 emotions, 2 statements, .wav and .flac."""
    rels = []
    for actor in range(1, 7):
        ext = "wav" if actor % 3 else "flac"
        for emo in range(1, 9):
            for st in (1, 2):
                intensity = 1 if emo == 1 else 2
                rels.append(f"Actor_{actor:02d}/03-01-{emo:02d}-{intensity:02d}-{st:02d}-01-"
                            f"{actor:02d}.{ext}")
    make_files(tmp_path / "ravdess", rels)
    return tmp_path / "ravdess"
