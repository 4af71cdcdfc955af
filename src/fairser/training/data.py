"""Data assembly: manifest rows + FeatureSet -> pre-padded tensors, labels and groups.

Everything a fit needs is stacked into tensors once, so the training loop never does Python
I/O per step. Features keep the store's float16 when it has it (cast per batch), float32
otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from fairser.errors import TrainingError

__all__ = [
    "FeatureSource",
    "LabelSpace",
    "Split",
    "attribute_codes",
    "feature_stats",
    "key_of",
    "make_split",
    "select_rows",
    "stack_features",
]


class FeatureSource(Protocol):
    """What training needs from a :class:`fairser.features.FeatureSet`."""

    n_layers: int
    dim: int

    def __getitem__(self, key: str) -> np.ndarray: ...

    def __contains__(self, key: object) -> bool: ...


def key_of(corpus: str, utt_id: str) -> str:
    """Unique utterance key across corpora, ``"{corpus}/{utt_id}"`` (the manifest contract)."""
    return f"{corpus}/{utt_id}"


def _where(row: pd.Series) -> str:
    return f"manifest row corpus={row['corpus']} utt_id={row['utt_id']} ({row.get('path', '?')})"


@dataclass(frozen=True)
class Split:
    """Pre-stacked tensors of one group of rows.

    Attributes
    ----------
    x : torch.Tensor
        (N, L, T, D) features (float16 or float32, see :func:`stack_features`), zero-padded
        in time.
    mask : torch.Tensor
        (N, T) bool, True on real frames.
    lengths : torch.Tensor
        (N,) int64 real frame counts (at least 1).
    y : torch.Tensor
        (N,) int64 emotion labels (binary 0/1 or class index), -1 where unused or unknown.
    g : torch.Tensor
        (N,) int64 attribute group index, -1 when unknown.
    keys : tuple of str
        Utterance keys, in row order.
    """

    x: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    y: torch.Tensor
    g: torch.Tensor
    keys: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def with_groups(self, g: torch.Tensor) -> Split:
        """Copy with other attribute groups (e.g. pseudo labels)."""
        return Split(self.x, self.mask, self.lengths, self.y, g, self.keys)


@dataclass(frozen=True)
class LabelSpace:
    """How manifest emotions map to training labels.

    Attributes
    ----------
    task : str
        ``binary`` or ``multiclass``.
    classes : tuple of str
        Binary: ``("rest", EMOTION)``; multiclass: the class names in index order.
    positive : str or None
        The positive emotion of a binary task.
    negatives : tuple of str or None
        Emotions counted as negatives (None: every other labelled emotion).
    """

    task: str
    classes: tuple[str, ...]
    positive: str | None = None
    negatives: tuple[str, ...] | None = None

    @property
    def n_outputs(self) -> int:
        """Width of the emotion head: 1 for binary, C for multiclass."""
        return 1 if self.task == "binary" else len(self.classes)

    def encode(self, emotions: pd.Series) -> np.ndarray:
        """Labels of a column of emotions, -1 for rows outside the task (or unlabelled)."""
        e = emotions.astype("string")
        out = np.full(len(e), -1, dtype=np.int64)
        known = e.notna().to_numpy()
        vals = e.fillna("").to_numpy(dtype=object)
        if self.task == "binary":
            pos = known & (vals == self.positive)
            if self.negatives is None:
                neg = known & ~pos
            else:
                neg = known & np.isin(vals, list(self.negatives))
            out[neg] = 0
            out[pos] = 1
        else:
            for i, c in enumerate(self.classes):
                out[known & (vals == c)] = i
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "task": self.task,
            "classes": list(self.classes),
            "positive": self.positive,
            "negatives": None if self.negatives is None else list(self.negatives),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelSpace:
        """Inverse of :meth:`to_dict`."""
        neg = d.get("negatives")
        return cls(
            d["task"], tuple(d["classes"]), d.get("positive"), None if neg is None else tuple(neg)
        )


def attribute_codes(values: pd.Series, groups: Sequence[str]) -> np.ndarray:
    """Index of each attribute value in ``groups``; -1 for missing or unseen values."""
    v = values.astype("string")
    out = np.full(len(v), -1, dtype=np.int64)
    arr = v.fillna("\0").to_numpy(dtype=object)
    for i, name in enumerate(groups):
        out[arr == name] = i
    return out


def select_rows(
    manifest: pd.DataFrame, *, split: str | None, what: str, columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Rows of ``manifest`` in ``split`` (all rows when None), after checking the columns.

    Raises
    ------
    TrainingError
        When a needed column is missing.
    """
    need = ["corpus", "utt_id", *columns] + (["split"] if split is not None else [])
    missing = [c for c in need if c not in manifest.columns]
    if missing:
        raise TrainingError(
            f"{what} manifest: missing column(s) {', '.join(missing)}; "
            "build it with fairser.corpora.load_corpus or add the column"
        )
    if split is None:
        return manifest.reset_index(drop=True)
    sel = manifest["split"].astype("string").fillna("") == split
    return manifest.loc[sel.to_numpy()].reset_index(drop=True)


def _bad_reason(features: FeatureSource, corpus: str, utt_id: str) -> str | None:
    """Why the feature set could not make this row's features, if it says."""
    bad = getattr(features, "bad", None)
    if not isinstance(bad, pd.DataFrame) or bad.empty or "reason" not in bad.columns:
        return None
    hit = bad[(bad["corpus"].astype(str) == corpus) & (bad["utt_id"].astype(str) == utt_id)]
    return None if hit.empty else str(hit["reason"].iloc[0])


def _pool_time(a: np.ndarray, stride: int) -> np.ndarray:
    """Average-pool (L, T, D) over time with kernel = stride = ``stride`` (last window partial)."""
    if stride == 1 or a.shape[1] <= 1:
        return a.astype(np.float32)
    L, T, D = a.shape
    n = -(-T // stride)
    pad = n * stride - T
    a32 = a.astype(np.float32)
    if pad:
        a32 = np.concatenate([a32, np.zeros((L, pad, D), np.float32)], axis=1)
    s = a32.reshape(L, n, stride, D).sum(2)
    counts = np.full(n, stride, np.float32)
    counts[-1] = stride - pad
    return s / counts[None, :, None]


def stack_features(
    rows: pd.DataFrame,
    features: FeatureSource,
    *,
    frame_stride: int,
    max_frames: int,
    what: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack the features of ``rows`` into padded tensors.

    Parameters
    ----------
    rows : pandas.DataFrame
        Manifest rows (columns ``corpus`` and ``utt_id`` at least).
    features : FeatureSource
        Mapping of utterance key to (L, T, D) arrays.
    frame_stride : int
        Average-pool this many frames into one.
    max_frames : int
        Keep at most this many frames after pooling (a centred crop).
    what : str
        Name of the row group, for error messages.

    Returns
    -------
    x, mask, lengths : torch.Tensor
        (N, L, T, D) features (float16 when the feature set stores float16, else float32, so
        that large values such as eGeMAPS functionals never overflow), (N, T) bool, (N,) int64.

    Raises
    ------
    TrainingError
        When a row has no features, or features of the wrong shape, naming the row and the fix.
    """
    arrays: list[np.ndarray] = []
    half = True  # keep float16 only when the store's features are float16 (no overflow)
    n_layers, dim = int(features.n_layers), int(features.dim)
    for _, row in rows.iterrows():
        key = key_of(str(row["corpus"]), str(row["utt_id"]))
        if key not in features:
            reason = _bad_reason(features, str(row["corpus"]), str(row["utt_id"]))
            raise TrainingError(
                f"{what}: no features for {_where(row)}"
                + (f" ({reason})" if reason else "")
                + "; extract features for this manifest or drop rows listed in FeatureSet.bad"
            )
        a = np.asarray(features[key])
        if a.ndim != 3 or a.shape[0] != n_layers or a.shape[2] != dim or a.shape[1] < 1:
            raise TrainingError(
                f"{what}: features of {_where(row)} have shape {a.shape}, expected "
                f"({n_layers}, T>=1, {dim}); re-extract them"
            )
        half = half and a.dtype == np.float16
        p = _pool_time(a, frame_stride)
        if p.shape[1] > max_frames:
            start = (p.shape[1] - max_frames) // 2
            p = p[:, start : start + max_frames]
        if not np.isfinite(p).all():
            raise TrainingError(
                f"{what}: features of {_where(row)} hold NaN or inf; re-extract them"
            )
        arrays.append(p)
    n = len(arrays)
    t_max = max((a.shape[1] for a in arrays), default=1)
    x = np.zeros((n, n_layers, t_max, dim), np.float16 if half else np.float32)
    lengths = np.zeros(n, np.int64)
    for i, a in enumerate(arrays):
        x[i, :, : a.shape[1]] = a
        lengths[i] = a.shape[1]
    mask = np.arange(t_max)[None, :] < lengths[:, None]
    return torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(lengths)


def make_split(
    rows: pd.DataFrame,
    features: FeatureSource,
    *,
    labels: LabelSpace | None,
    attribute: str,
    groups: Sequence[str],
    frame_stride: int,
    max_frames: int,
    what: str,
) -> Split:
    """Build a :class:`Split` (labels from ``emotion`` only when ``labels`` is given)."""
    x, mask, lengths = stack_features(
        rows, features, frame_stride=frame_stride, max_frames=max_frames, what=what
    )
    n = len(rows)
    y = labels.encode(rows["emotion"]) if labels is not None else np.full(n, -1, np.int64)
    g = (
        attribute_codes(rows[attribute], groups)
        if attribute in rows.columns
        else np.full(n, -1, np.int64)
    )
    keys = tuple(
        key_of(str(c), str(u)) for c, u in zip(rows["corpus"], rows["utt_id"], strict=True)
    )
    return Split(x, mask, lengths, torch.from_numpy(y), torch.from_numpy(g), keys)


def feature_stats(
    x: torch.Tensor, mask: torch.Tensor, *, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(layer, dim) mean and std over the real frames of (N, L, T, D) features."""
    L, D = x.shape[1], x.shape[3]
    s1 = torch.zeros(L, D, dtype=torch.float64)
    s2 = torch.zeros(L, D, dtype=torch.float64)
    count = 0.0
    for i in range(0, x.shape[0], chunk):
        xs = x[i : i + chunk].to(torch.float64)
        m = mask[i : i + chunk, None, :, None].to(torch.float64)
        s1 += (xs * m).sum(dim=(0, 2))
        s2 += (xs.pow(2) * m).sum(dim=(0, 2))
        count += float(mask[i : i + chunk].sum())
    count = max(count, 1.0)
    mean = s1 / count
    var = (s2 / count - mean.pow(2)).clamp_min(0.0)
    return mean.float(), var.sqrt().float()
