"""Row bookkeeping of a fit: manifest rows -> labels, groups, keys and frame counts.

A :class:`Split` holds what the loop needs to plan batches (utterance keys, corpora, frame
counts after striding and cropping, labels, attribute groups), never the features themselves:
those are read per batch from the feature store (:mod:`fairser.training.rows`). Building a
split reads only the shape of each row's features (a header read in a
:class:`~fairser.features.FeatureSet`), so its memory is about a hundred bytes per row: the
key string, and four numbers (the corpus column holds references to one string per corpus, not a
string per row; ``tests/training/test_streaming.py`` bounds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fairser.corpora import utt_key
from fairser.errors import TrainingError

__all__ = [
    "FeatureSource",
    "LabelSpace",
    "Split",
    "attribute_codes",
    "corpus_column",
    "make_split",
    "pooled_length",
    "row_keys",
    "select_rows",
]


class FeatureSource(Protocol):
    """What training needs from a :class:`fairser.features.FeatureSet`.

    ``source[key]`` gives an ``(L, T, D)`` array (memory-mapped in a FeatureSet); a source
    with a ``shape(key)`` method (as a FeatureSet has) lets splits be built from headers only.
    """

    n_layers: int
    dim: int

    def __getitem__(self, key: str) -> np.ndarray: ...

    def __contains__(self, key: object) -> bool: ...


def row_keys(rows: pd.DataFrame) -> list[str]:
    """Utterance key (:func:`fairser.corpora.utt_key`) of every row, in row order."""
    return [utt_key(str(c), str(u)) for c, u in zip(rows["corpus"], rows["utt_id"], strict=True)]


def pooled_length(n_frames: int, *, frame_stride: int, max_frames: int) -> int:
    """Frames left of ``n_frames`` after average-pooling by ``frame_stride`` and the crop."""
    n = n_frames if frame_stride == 1 or n_frames <= 1 else -(-n_frames // frame_stride)
    return min(n, max_frames)


@dataclass(frozen=True)
class Split:
    """The rows of one part of a fit (source train, source dev, target, rows to predict).

    Attributes
    ----------
    keys : tuple of str
        Utterance keys, in row order.
    corpora : numpy.ndarray
        (N,) corpus name of each row (object array; rows of one corpus share one string).
    lengths : numpy.ndarray
        (N,) int64 frames of each row after ``frame_stride`` and ``max_frames`` (>= 1).
    y : numpy.ndarray
        (N,) int64 emotion labels (binary 0/1 or class index), -1 where unused or unknown.
    g : numpy.ndarray
        (N,) int64 attribute group index, -1 when unknown.
    """

    keys: tuple[str, ...]
    corpora: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    g: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def with_groups(self, g: np.ndarray) -> Split:
        """Copy with other attribute groups (e.g. pseudo labels)."""
        return replace(self, g=np.asarray(g, dtype=np.int64))


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


def _where(rows: pd.DataFrame, i: int) -> str:
    row = rows.iloc[i]
    return f"manifest row corpus={row['corpus']} utt_id={row['utt_id']} ({row.get('path', '?')})"


def _bad_reason(features: FeatureSource, corpus: str, utt_id: str) -> str | None:
    """Why the feature set could not make this row's features, if it says."""
    bad = getattr(features, "bad", None)
    if not isinstance(bad, pd.DataFrame) or bad.empty or "reason" not in bad.columns:
        return None
    hit = bad[(bad["corpus"].astype(str) == corpus) & (bad["utt_id"].astype(str) == utt_id)]
    return None if hit.empty else str(hit["reason"].iloc[0])


def _shape(features: FeatureSource, key: str) -> tuple[int, ...]:
    """Shape of ``features[key]``, from the header when the source can tell it."""
    shape = getattr(features, "shape", None)
    if callable(shape):
        return tuple(int(s) for s in shape(key))
    return tuple(np.shape(features[key]))


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
    """Build a :class:`Split` (labels from ``emotion`` only when ``labels`` is given).

    Raises
    ------
    TrainingError
        When a row has no features, or features of the wrong shape, naming the row and the fix.
    """
    keys = row_keys(rows)
    n_layers, dim = int(features.n_layers), int(features.dim)
    lengths = np.zeros(len(keys), np.int64)
    for i, key in enumerate(keys):
        if key not in features:
            row = rows.iloc[i]
            reason = _bad_reason(features, str(row["corpus"]), str(row["utt_id"]))
            raise TrainingError(
                f"{what}: no features for {_where(rows, i)}"
                + (f" ({reason})" if reason else "")
                + "; extract features for this manifest or drop rows listed in FeatureSet.bad"
            )
        shape = _shape(features, key)
        if len(shape) != 3 or shape[0] != n_layers or shape[2] != dim or shape[1] < 1:
            raise TrainingError(
                f"{what}: features of {_where(rows, i)} have shape {shape}, expected "
                f"({n_layers}, T>=1, {dim}); re-extract them"
            )
        lengths[i] = pooled_length(shape[1], frame_stride=frame_stride, max_frames=max_frames)
    n = len(rows)
    y = labels.encode(rows["emotion"]) if labels is not None else np.full(n, -1, np.int64)
    g = (
        attribute_codes(rows[attribute], groups)
        if attribute in rows.columns
        else np.full(n, -1, np.int64)
    )
    return Split(tuple(keys), corpus_column(rows["corpus"]), lengths, y, g)


def corpus_column(corpus: pd.Series) -> np.ndarray:
    """(N,) object array of corpus names in which rows of one corpus share one string object
    (8 bytes a row, where converting the column gives every row its own string)."""
    codes, names = pd.factorize(corpus.astype(str), sort=False, use_na_sentinel=False)
    table = np.empty(len(names), dtype=object)
    table[:] = list(names)  # the values as converting the column gives them (str, or a NaN)
    return table[codes]
