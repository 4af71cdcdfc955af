"""Acoustic anchors for ``alignment: anchors`` (an approximation of phonetic anchors).

Frames of voiced, high-energy regions of both corpora are clustered with k-means into K
anchors; every frame then carries its anchor index (-1 for unvoiced, quiet or padded frames).
Energy and voicing come from the audio itself: per feature frame, the RMS level (kept when at
or above the utterance's ``energy_quantile``) and the zero-crossing rate (kept at or below
:data:`VOICED_ZCR`, a common voiced/unvoiced split at 16 kHz). The clustered vectors are the
standardised input features averaged over layers, the same frames the encoder sees.

Everything streams: a first pass over the rows computes each row's activity (from its audio),
the k-means sample is then gathered in a second pass, and a third pass assigns every active
frame its anchor; the result is an :class:`AnchorTable` of small integers per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import MiniBatchKMeans

from fairser.audio import load_audio
from fairser.errors import FairserError, TrainingError
from fairser.training.data import Split
from fairser.training.pooling import pool_time
from fairser.training.rows import RowReader

__all__ = ["VOICED_ZCR", "AnchorTable", "anchor_assignments", "frame_activity"]

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
    n_frames: int,
    *,
    frame_rate: float,
    frame_stride: int,
    max_frames: int,
    energy_quantile: float,
    what: str,
) -> np.ndarray:
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
    return (
        pool_time(act.astype(np.float32)[None, :, None], frame_stride, max_frames)[0, :, 0] >= 0.5
    )


@dataclass(frozen=True)
class AnchorTable:
    """Anchor index of every frame of a split's rows (-1: no anchor), stored ragged.

    Attributes
    ----------
    flat : numpy.ndarray
        All rows' frames, concatenated (int16 when ``n_anchors`` fits, else int32).
    offsets : numpy.ndarray
        (N + 1,) start of each row in :attr:`flat`.
    """

    flat: np.ndarray
    offsets: np.ndarray

    def row(self, i: int) -> np.ndarray:
        """Anchor indices of row ``i``'s frames."""
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def cut(self, idx: np.ndarray, t: int, device: torch.device | None = None) -> torch.Tensor:
        """(len(idx), t) int64 anchors of rows ``idx``, cut or padded with -1 to ``t`` frames."""
        out = np.full((len(idx), t), -1, np.int64)
        for k, i in enumerate(idx):
            a = self.row(int(i))[:t]
            out[k, : len(a)] = a
        return torch.from_numpy(out).to(device) if device is not None else torch.from_numpy(out)

    def dense(self) -> torch.Tensor:
        """(N, T_max) int64 tensor of every row, padded with -1 (small splits, tests)."""
        n = len(self.offsets) - 1
        t = int(np.diff(self.offsets).max(initial=1))
        return self.cut(np.arange(n), t)


def _frame_vectors(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(T, D) standardised, layer-averaged frames of one row's (L, T, D) input."""
    z = (torch.from_numpy(x).float() - torch.from_numpy(mean)[:, None, :]) / torch.from_numpy(
        std
    ).clamp_min(1e-4)[:, None, :]
    return z.mean(0).numpy()


def anchor_assignments(
    parts: list[tuple[Split, pd.DataFrame]],
    reader: RowReader,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    n_anchors: int,
    energy_quantile: float,
    seed: int,
) -> list[AnchorTable]:
    """Fit K anchors on the active frames of every part and assign each frame its anchor.

    Parameters
    ----------
    parts : list of (Split, pandas.DataFrame)
        The rows and their manifest rows (for audio paths), e.g. source train and target.
    reader : RowReader
        Reads each row's input (its features give ``frame_rate`` and raw frame counts).
    mean, std : torch.Tensor
        (L, D) standardisation statistics.
    n_anchors : int
        K.
    energy_quantile : float
        Per-utterance energy threshold (quantile).
    seed : int
        Seed of k-means and of the frame subsample.

    Returns
    -------
    list of AnchorTable
        Per part, the anchor index of every frame (-1 for frames without an anchor).

    Raises
    ------
    TrainingError
        For functionals (one frame per utterance), or when too few active frames exist.
    """
    features = reader.features
    frame_rate = float(getattr(features, "frame_rate", 0.0) or 0.0)
    if frame_rate <= 0:
        raise TrainingError(
            "anchors alignment needs frame-level features with a frame_rate; "
            "use alignment: coral with functionals"
        )
    m, sd = mean.numpy(), std.numpy()
    # pass 1: activity of every frame (from the audio), one flat boolean array per part
    actives: list[tuple[np.ndarray, np.ndarray]] = []
    for split, rows in parts:
        offsets = np.zeros(len(split) + 1, np.int64)
        offsets[1:] = np.cumsum(split.lengths)
        act = np.zeros(int(offsets[-1]), dtype=bool)
        for i in range(len(split)):
            n_raw = int(np.shape(features[split.keys[i]])[1])
            a = _activity_for(
                rows.iloc[i],
                n_raw,
                frame_rate=frame_rate,
                frame_stride=reader.frame_stride,
                max_frames=reader.max_frames,
                energy_quantile=energy_quantile,
                what="anchors",
            )
            n = min(len(a), int(split.lengths[i]))
            act[offsets[i] : offsets[i] + n] = a[:n]
        actives.append((act, offsets))
    total = sum(int(act.sum()) for act, _ in actives)
    if total < n_anchors * 4:
        raise TrainingError(
            f"anchors alignment: only {total} voiced high-energy frames for "
            f"{n_anchors} anchors; lower n_anchors or anchor_energy_quantile"
        )
    # pass 2: the k-means sample (the same frames, in the same order, as drawing from all)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(total, size=min(total, _MAX_FIT_FRAMES), replace=False)
    order = np.argsort(chosen, kind="stable")
    sorted_chosen = chosen[order]
    fit_rows = np.zeros((len(chosen), int(features.dim)), np.float32)
    pos = 0
    for (split, _), (act, offsets) in zip(parts, actives, strict=True):
        for i in range(len(split)):
            a = act[offsets[i] : offsets[i + 1]]
            k = int(a.sum())
            lo, hi = np.searchsorted(sorted_chosen, [pos, pos + k])
            if hi > lo:
                v = _frame_vectors(reader.read(split.keys[i], str(split.corpora[i])), m, sd)
                fit_rows[order[lo:hi]] = v[a][sorted_chosen[lo:hi] - pos]
            pos += k
    km = MiniBatchKMeans(
        n_clusters=n_anchors, random_state=seed, n_init=3, batch_size=2048, max_iter=50
    ).fit(fit_rows)
    # pass 3: every active frame's anchor
    dtype = np.int16 if n_anchors < 2**15 else np.int32
    out = []
    for (split, _), (act, offsets) in zip(parts, actives, strict=True):
        flat = np.full(len(act), -1, dtype)
        for i in range(len(split)):
            a = act[offsets[i] : offsets[i + 1]]
            if a.any():
                v = _frame_vectors(reader.read(split.keys[i], str(split.corpora[i])), m, sd)
                flat[offsets[i] : offsets[i + 1]][a] = km.predict(v[a]).astype(dtype)
        out.append(AnchorTable(flat, offsets))
    return out
