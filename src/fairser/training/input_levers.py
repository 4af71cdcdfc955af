"""Fairness levers that act on a model's inputs: per-speaker norm and input-side erasure.

``input_norm: per-speaker`` standardises every row with its (corpus, speaker) statistics
(:class:`fairser.levers.SpeakerNorm`, fitted on the strided/cropped frames of the source
training rows and the stage-2 target rows). The statistics reach the
:class:`~fairser.training.rows.RowReader` as a table keyed by utterance key, so the loop, the
anchors and the pseudo-label classifier see the standardised rows exactly as with
``per-corpus``. Rows of a speaker unseen in training use the statistics of that speaker's rows
among those being read (test-time adaptation, ``adapt=True``), else their corpus's, else all
fitted frames; one :class:`UserWarning` counts the rows of each fallback. A manifest without a
``speaker`` column (or rows without a speaker) gets corpus statistics, with a warning.

``erase: leace | qleace`` with ``erase_on: inputs`` erases gender from every frame vector (the
layers of one frame flattened, ``L*D``) after the standardisation (:class:`InputEraser`, the
reader's ``transform``). Only audio, speaker ids and gender labels are read; never emotions.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairser.errors import TrainingError
from fairser.levers import GenderEraser, NormReport, QuadraticGenderEraser, SpeakerNorm
from fairser.levers.speaker_norm import frame_moments
from fairser.training.config import TrainConfig
from fairser.training.data import Split
from fairser.training.rows import NormTable, RowReader, split_arrays

__all__ = [
    "InputEraser",
    "LazyFrames",
    "fit_input_eraser",
    "fit_speaker_norm",
    "gender_strings",
    "speaker_table",
    "speakers_of",
]

_NO_SPEAKER = "\0no-speaker:"


def speakers_of(rows: pd.DataFrame) -> np.ndarray | None:
    """The ``speaker`` column as strings (None where missing), or None without the column."""
    if "speaker" not in rows.columns:
        return None
    s = rows["speaker"].astype("string")
    return np.asarray([None if pd.isna(v) else str(v) for v in s], dtype=object)


def gender_strings(rows: pd.DataFrame, attribute: str) -> np.ndarray | None:
    """The attribute column as strings (None where missing), or None without the column."""
    if attribute not in rows.columns:
        return None
    s = rows[attribute].astype("string")
    return np.asarray([None if pd.isna(v) else str(v) for v in s], dtype=object)


class LazyFrames(Sequence):
    """The raw (pooled, cropped) frames of a split's rows, read on indexing."""

    def __init__(self, reader: RowReader, keys: Sequence[str]) -> None:
        self.reader, self.keys = reader, list(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: Any) -> np.ndarray:  # type: ignore[override]
        return self.reader.raw(self.keys[int(i)], what="per-speaker norm")


def _speaker_keys(speakers: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Speaker id per row (a per-row placeholder where unknown) and the known-row mask."""
    if speakers is None:
        speakers = np.full(n, None, dtype=object)
    known = np.asarray([s is not None for s in speakers], dtype=bool)
    ids = np.asarray(
        [
            s if k else f"{_NO_SPEAKER}{i}"
            for i, (s, k) in enumerate(zip(speakers, known, strict=True))
        ],
        dtype=object,
    )
    return ids, known


def fit_speaker_norm(
    reader: RowReader, parts: Sequence[tuple[Split, np.ndarray | None]], cfg: TrainConfig
) -> SpeakerNorm:
    """Fit :class:`SpeakerNorm` on the raw frames of ``parts`` ((split, speakers) pairs).

    Rows without a speaker count towards their corpus's (and the global) statistics only.
    """
    counts, sums, sumsq, spk, corp = [], [], [], [], []
    for split, speakers in parts:
        if len(split) == 0:
            continue
        c, s1, s2 = frame_moments(split_arrays(reader, split, what="per-speaker norm"))
        counts.append(c)
        sums.append(s1)
        sumsq.append(s2)
        spk.append(_speaker_keys(speakers, len(split))[0])
        corp.append(np.asarray(split.corpora, dtype=object))
    norm = SpeakerNorm(
        min_utterances=cfg.speaker_norm_min_utterances,
        strength=cfg.speaker_norm_strength,
        adapt=True,
    )
    norm.fit_moments(
        np.concatenate(counts),
        np.concatenate(sums),
        np.concatenate(sumsq),
        speakers=np.concatenate(spk),
        corpora=np.concatenate(corp),
    )
    return _prune(norm)  # a row without a speaker is never a speaker of its own


def _prune(norm: SpeakerNorm) -> SpeakerNorm:
    keep = [i for i, k in enumerate(norm.speaker_keys) if _NO_SPEAKER not in k]
    if len(keep) != len(norm.speaker_keys):
        norm.speaker_keys = [norm.speaker_keys[i] for i in keep]
        norm._spk = (norm._spk[0][keep], norm._spk[1][keep])
    return norm


def speaker_table(
    norm: SpeakerNorm,
    reader: RowReader,
    split: Split,
    speakers: np.ndarray | None,
    *,
    what: str,
    warn: bool = True,
) -> tuple[NormTable, NormReport]:
    """Statistics of each row of ``split`` keyed by utterance key, and what fell back.

    Parameters
    ----------
    norm : SpeakerNorm
        The fitted lever.
    reader : RowReader
        Reads raw frames (for the test-time adaptation of unseen speakers).
    split : Split
        The rows.
    speakers : numpy.ndarray or None
        Speaker of each row (None: no ``speaker`` column; each row gets its corpus's).
    what : str
        Name of the rows, for the warning.
    warn : bool
        Emit one :class:`UserWarning` when rows fell back from fitted speaker statistics.
    """
    n = len(split)
    base = reader.with_(norm=None, transform=None)
    ids, known = _speaker_keys(speakers, n)
    corpora = np.asarray(split.corpora, dtype=object)
    report = NormReport()
    table: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for mask, lever in ((known, norm), (~known, _no_adapt(norm))):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        frames = LazyFrames(base, [split.keys[i] for i in idx])
        mean, std = lever.row_stats(frames, speakers=ids[idx], corpora=corpora[idx])
        shared: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for j, i in enumerate(idx):
            k = (str(corpora[i]), str(ids[i]))
            if k not in shared:
                shared[k] = (mean[j].astype(np.float32), std[j].astype(np.float32))
            table[split.keys[i]] = shared[k]
        sub = lever.last_report
        for src, c in sub.counts.items():
            report.counts[src] += c
        report.fell_back.update(sub.fell_back)
    n_missing = int((~known).sum())
    if warn and (n_missing or report.fell_back):
        why = (
            f"; {n_missing} row(s) without a speaker (no `speaker` column or a missing value) "
            "fell back to their corpus's statistics, or to the global ones where the corpus "
            "was not seen in fitting (name it: a `corpus` column or --corpus)"
            if n_missing
            else ""
        )
        warnings.warn(
            f"{what}: input_norm per-speaker: {report.counts['speaker']} row(s) with fitted "
            f"speaker statistics, {report.counts['adapted']} adapted to their own rows here "
            f"(speakers unseen in training), {report.counts['corpus']} with corpus and "
            f"{report.counts['global']} with global statistics{why}",
            UserWarning,
            stacklevel=3,
        )
    return table, report


def _no_adapt(norm: SpeakerNorm) -> SpeakerNorm:
    lever = copy.copy(norm)
    lever.adapt = False
    return lever


class InputEraser:
    """``RowReader.transform`` erasing gender from every frame vector of a row.

    Parameters
    ----------
    eraser : GenderEraser or QuadraticGenderEraser
        Fitted on frame vectors (``L*D`` wide).
    genders : mapping of str to str, optional
        Utterance key -> gender; required by the quadratic eraser (rows without one are
        left unchanged).
    """

    def __init__(self, eraser: Any, genders: Mapping[str, str] | None = None) -> None:
        self.eraser, self.genders = eraser, dict(genders or {})

    def __call__(self, key: str, x: np.ndarray) -> np.ndarray:
        L, T, D = x.shape
        flat = np.moveaxis(np.asarray(x, np.float64), 1, 0).reshape(T, L * D)
        if isinstance(self.eraser, QuadraticGenderEraser):
            g = self.genders.get(key)
            if g is None:
                return x
            out = self.eraser.transform(flat, groups=[g] * T)
        else:
            out = self.eraser.transform(flat)
        return np.moveaxis(out.reshape(T, L, D), 0, 1)


def fit_input_eraser(
    reader: RowReader, parts: Sequence[tuple[Split, np.ndarray | None]], cfg: TrainConfig
) -> Any:
    """Fit the configured eraser on the frame vectors of ``parts`` ((split, genders) pairs),
    as the reader standardises them; rows without a gender are skipped.

    The rows are read one at a time while the eraser's statistics are updated in bounded
    chunks of frames (``fit_frames``): the fit never holds the frames of all the rows.
    """
    rows = [
        (split, int(i), str(g[i]))
        for split, g in parts
        if g is not None
        for i in np.flatnonzero([v is not None for v in g])
    ]
    genders = [gender for _, _, gender in rows]
    if len(set(genders)) < 2:
        raise TrainingError(
            f"erase: {cfg.erase} needs rows of at least two genders in the source training "
            f"and target rows, found {sorted(set(genders))}; check the {cfg.attribute} column"
        )
    frames = (
        reader.read(split.keys[i], str(split.corpora[i]), what="erase") for split, i, _ in rows
    )
    lever = GenderEraser if cfg.erase == "leace" else QuadraticGenderEraser
    return lever(strength=cfg.erase_strength).fit_frames(frames, sensitive_features=genders)
