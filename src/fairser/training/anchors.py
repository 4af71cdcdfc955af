"""Acoustic anchors for ``alignment: anchors`` (an approximation of phonetic anchors).

Frames of voiced, high-energy regions of both corpora are clustered with k-means into K
anchors; every frame then carries its anchor index (-1 for unvoiced, quiet or padded frames).
Energy and voicing come from the audio itself: per feature frame, the RMS level (kept when at
or above the utterance's ``energy_quantile``) and the zero-crossing rate (kept at or below
:data:`VOICED_ZCR`, a common voiced/unvoiced split at 16 kHz). The clustered vectors are the
standardised input features averaged over layers, the same frames the encoder sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import MiniBatchKMeans

from fairser.audio import load_audio
from fairser.errors import FairserError, TrainingError
from fairser.training.data import FeatureSource, Split, _pool_time, key_of

__all__ = ["VOICED_ZCR", "anchor_assignments", "frame_activity"]

#: Zero-crossing rate (crossings per sample) at or below which a frame counts as voiced.
VOICED_ZCR = 0.25
_MAX_FIT_FRAMES = 20000


def frame_activity(
    signal: np.ndarray, n_frames: int, *, hop: float, energy_quantile: float
) -> np.ndarray:
    """Voiced, high-energy flag of each of ``n_frames`` frames of ``hop`` samples.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono waveform.
    n_frames : int
        Number of feature frames to describe.
    hop : float
        Samples per feature frame.
    energy_quantile : float
        Frames below this quantile of the utterance's frame RMS (dB) are inactive.

    Returns
    -------
    numpy.ndarray
        (n_frames,) bool.
    """
    out = np.zeros(n_frames, dtype=bool)
    rms = np.full(n_frames, -np.inf)
    zcr = np.ones(n_frames)
    for t in range(n_frames):
        a, b = int(round(t * hop)), int(round((t + 1) * hop))
        seg = signal[a:b]
        if len(seg) < 2:
            continue
        rms[t] = 10.0 * np.log10(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-10)
        zcr[t] = float(np.mean(np.abs(np.diff(np.signbit(seg).astype(np.int8)))))
    finite = np.isfinite(rms)
    if not finite.any():
        return out
    thr = np.quantile(rms[finite], energy_quantile)
    out[:] = finite & (rms >= thr) & (zcr <= VOICED_ZCR)
    return out


def _activity_for(
    row: pd.Series,
    features: FeatureSource,
    *,
    frame_rate: float,
    frame_stride: int,
    max_frames: int,
    energy_quantile: float,
    what: str,
) -> np.ndarray:
    key = key_of(str(row["corpus"]), str(row["utt_id"]))
    n_frames = int(np.asarray(features[key]).shape[1])
    try:
        signal = load_audio(str(row["path"]))
    except FairserError as exc:
        raise TrainingError(
            f"{what}: anchors alignment reads the audio of utt_id={row['utt_id']} "
            f"({row['path']}) for frame energies and failed ({exc}); restore the file "
            "or use alignment: coral"
        ) from None
    act = frame_activity(
        signal, n_frames, hop=16000.0 / frame_rate, energy_quantile=energy_quantile
    )
    pooled = _pool_time(act.astype(np.float32)[None, :, None], frame_stride)[0, :, 0] >= 0.5
    if len(pooled) > max_frames:
        start = (len(pooled) - max_frames) // 2
        pooled = pooled[start : start + max_frames]
    return pooled


def _frame_vectors(split: Split, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, T, D) standardised, layer-averaged frames."""
    z = (split.x.float() - mean[None, :, None, :]) / std.clamp_min(1e-4)[None, :, None, :]
    return z.mean(1)


def anchor_assignments(
    parts: list[tuple[Split, pd.DataFrame]],
    features: FeatureSource,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    n_anchors: int,
    frame_stride: int,
    max_frames: int,
    energy_quantile: float,
    seed: int,
) -> list[torch.Tensor]:
    """Fit K anchors on the active frames of every part and assign each frame its anchor.

    Parameters
    ----------
    parts : list of (Split, pandas.DataFrame)
        The stacked rows and their manifest rows (for audio paths), e.g. source train and target.
    features : FeatureSource
        The feature set (for ``frame_rate`` and original frame counts).
    mean, std : torch.Tensor
        (L, D) standardisation statistics.
    n_anchors : int
        K.
    frame_stride, max_frames : int
        As used to stack the features.
    energy_quantile : float
        Per-utterance energy threshold (quantile).
    seed : int
        Seed of k-means and of the frame subsample.

    Returns
    -------
    list of torch.Tensor
        Per part, (N, T) int64 anchor indices, -1 for frames without an anchor.

    Raises
    ------
    TrainingError
        For functionals (one frame per utterance), or when too few active frames exist.
    """
    frame_rate = float(getattr(features, "frame_rate", 0.0) or 0.0)
    if frame_rate <= 0:
        raise TrainingError(
            "anchors alignment needs frame-level features with a frame_rate; "
            "use alignment: coral with functionals"
        )
    actives, vectors = [], []
    for split, rows in parts:
        act = torch.zeros_like(split.mask)
        for i, (_, row) in enumerate(rows.iterrows()):
            a = _activity_for(
                row,
                features,
                frame_rate=frame_rate,
                frame_stride=frame_stride,
                max_frames=max_frames,
                energy_quantile=energy_quantile,
                what="anchors",
            )
            n = min(len(a), int(split.lengths[i]))
            act[i, :n] = torch.from_numpy(a[:n])
        act &= split.mask
        actives.append(act)
        vectors.append(_frame_vectors(split, mean, std))
    pool = torch.cat([v[a] for v, a in zip(vectors, actives, strict=True)]).numpy()
    if len(pool) < n_anchors * 4:
        raise TrainingError(
            f"anchors alignment: only {len(pool)} voiced high-energy frames for "
            f"{n_anchors} anchors; lower n_anchors or anchor_energy_quantile"
        )
    rng = np.random.default_rng(seed)
    fit_rows = pool[rng.choice(len(pool), size=min(len(pool), _MAX_FIT_FRAMES), replace=False)]
    km = MiniBatchKMeans(
        n_clusters=n_anchors, random_state=seed, n_init=3, batch_size=2048, max_iter=50
    ).fit(fit_rows)
    out = []
    for v, a in zip(vectors, actives, strict=True):
        lab = torch.full(a.shape, -1, dtype=torch.int64)
        if bool(a.any()):
            lab[a] = torch.from_numpy(km.predict(v[a].numpy()).astype(np.int64))
        out.append(lab)
    return out
