"""A fake FeatureSet and a synthetic corpus pair with a planted gender shortcut in the source
(generated here, fixed seeds): the shared fixtures of tests/training and tests/methods
(a plain module, since test files cannot import a conftest under importlib mode)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EMOTIONS = ("angry", "happy", "sad", "neutral")


#: Tiny training options for lever tests (a few epochs of a 16-wide network).
LEVER_TINY = {
    "model": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "embed_dim": 16, "gc_hidden": 8},
    "stage1_epochs": 3,
    "stage2_epochs": 2,
    "batch_size": 32,
    "frame_stride": 3,
    "max_frames": 8,
    "num_threads": 1,
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
    n_layers: int,
    dim: int,
    emo_amp: float,
    gen_amp: float,
    arrays: dict[str, np.ndarray],
) -> pd.DataFrame:
    rows = []
    n_spk = 8
    for i in range(n):
        emo = EMOTIONS[i % len(EMOTIONS)]
        if emo == "angry":
            gender = "M" if rng.random() < shortcut else "F"
        else:
            gender = "F" if rng.random() < shortcut else "M"
        spk = f"{gender}{rng.integers(n_spk // 2)}"
        t = int(rng.integers(12, 30))
        x = rng.normal(size=(n_layers, t, dim))
        x += emo_amp * dirs[emo][None, None, :] * rng.uniform(0.3, 1.7)
        x += gen_amp * (1.0 if gender == "M" else -1.0) * dirs["gender"][None, None, :]
        x += shift[None, None, :]
        utt = f"u{i:04d}"
        arrays[f"{name}/{utt}"] = x.astype(np.float16)
        r = rng.random()
        split = "train" if r < 0.7 else ("dev" if r < 0.85 else "test")
        rows.append(
            {
                "corpus": name,
                "utt_id": utt,
                "path": f"/nonexistent/{name}/{utt}.wav",
                "speaker": spk,
                "gender": gender,
                "emotion": emo,
                "split": split,
                "language": "xx",
                "duration_s": t / 50.0,
            }
        )
    df = pd.DataFrame(rows)
    for c in df.columns[:-1]:
        df[c] = df[c].astype("string")
    return df


def make_pair(
    *,
    seed: int = 0,
    n_source: int = 320,
    n_target: int = 240,
    dim: int = 16,
    n_layers: int = 1,
    shortcut: float = 0.85,
    emo_amp: float = 0.35,
    gen_amp: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame, FakeFeatures]:
    """Source with most angry rows male (a gender shortcut), gender-balanced target with a
    domain shift. Emotion and gender live in random directions of the feature space."""
    rng = np.random.default_rng(seed)
    dirs = {k: rng.normal(size=dim) / np.sqrt(dim) * 2.0 for k in (*EMOTIONS, "gender")}
    arrays: dict[str, np.ndarray] = {}
    src = _corpus(
        "src",
        n_source,
        rng,
        shortcut=shortcut,
        dirs=dirs,
        shift=np.zeros(dim),
        n_layers=n_layers,
        dim=dim,
        emo_amp=emo_amp,
        gen_amp=gen_amp,
        arrays=arrays,
    )
    tgt = _corpus(
        "tgt",
        n_target,
        rng,
        shortcut=0.5,
        dirs=dirs,
        shift=rng.normal(size=dim) * 0.8,
        n_layers=n_layers,
        dim=dim,
        emo_amp=emo_amp,
        gen_amp=gen_amp,
        arrays=arrays,
    )
    return src, tgt, FakeFeatures(arrays, n_layers=n_layers, dim=dim)
