"""Fixtures of the method contract tests: a small generated corpus pair with a planted gender
shortcut in the source and a fake feature store (ported from ``tests/training/conftest.py``,
fixed seeds), and the tiny training options every contract fit uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

EMOTIONS = ("angry", "happy", "sad", "neutral")

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


@dataclass
class FakeFeatures:
    """Dict-backed stand-in for fairser.features.FeatureSet (same attributes)."""

    arrays: dict[str, np.ndarray]
    n_layers: int
    dim: int
    frontend: str = "fake"
    layers: tuple[int, ...] = (0,)
    frame_rate: float = 50.0
    bad: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["corpus", "utt_id", "path", "reason"])
    )

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: object) -> bool:
        return key in self.arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def keys(self):
        return self.arrays.keys()


def _corpus(
    name: str,
    n: int,
    rng: np.random.Generator,
    *,
    shortcut: float,
    dirs: dict[str, np.ndarray],
    shift: np.ndarray,
    dim: int,
    arrays: dict[str, np.ndarray],
) -> pd.DataFrame:
    rows = []
    for i in range(n):
        emo = EMOTIONS[i % len(EMOTIONS)]
        if emo == "angry":
            gender = "M" if rng.random() < shortcut else "F"
        else:
            gender = "F" if rng.random() < shortcut else "M"
        t = int(rng.integers(12, 30))
        x = rng.normal(size=(1, t, dim))
        x += 0.35 * dirs[emo][None, None, :] * rng.uniform(0.3, 1.7)
        x += (1.0 if gender == "M" else -1.0) * dirs["gender"][None, None, :]
        x += shift[None, None, :]
        utt = f"u{i:04d}"
        arrays[f"{name}/{utt}"] = x.astype(np.float16)
        r = rng.random()
        rows.append(
            {
                "corpus": name,
                "utt_id": utt,
                "path": f"/nonexistent/{name}/{utt}.wav",
                "speaker": f"{gender}{rng.integers(4)}",
                "gender": gender,
                "emotion": emo,
                "split": "train" if r < 0.7 else ("dev" if r < 0.85 else "test"),
                "language": "xx",
                "duration_s": t / 50.0,
            }
        )
    df = pd.DataFrame(rows)
    for c in df.columns[:-1]:
        df[c] = df[c].astype("string")
    return df


def make_pair(
    *, seed: int = 0, n_source: int = 160, n_target: int = 96, dim: int = 8
) -> tuple[pd.DataFrame, pd.DataFrame, FakeFeatures]:
    """Source with most angry rows male (a gender shortcut), gender-balanced target with a
    domain shift; emotion and gender live in random directions of the feature space."""
    rng = np.random.default_rng(seed)
    dirs = {k: rng.normal(size=dim) / np.sqrt(dim) * 2.0 for k in (*EMOTIONS, "gender")}
    arrays: dict[str, np.ndarray] = {}
    src = _corpus(
        "src",
        n_source,
        rng,
        shortcut=0.85,
        dirs=dirs,
        shift=np.zeros(dim),
        dim=dim,
        arrays=arrays,
    )
    tgt = _corpus(
        "tgt",
        n_target,
        rng,
        shortcut=0.5,
        dirs=dirs,
        shift=rng.normal(size=dim) * 0.8,
        dim=dim,
        arrays=arrays,
    )
    return src, tgt, FakeFeatures(arrays, n_layers=1, dim=dim)


@pytest.fixture(scope="session")
def tiny_pair() -> tuple[pd.DataFrame, pd.DataFrame, FakeFeatures, dict]:
    """(source, target, features, training options) of every contract fit (do not mutate)."""
    return (*make_pair(), TINY)
