"""Per-speaker standardisation of frame features (``SpeakerNorm``), with a reported fallback.

Each speaker's frames are standardised with the mean and standard deviation (per layer and
dimension) of ALL frames of that speaker's utterances. This removes what is constant within a
speaker (voice, microphone, room), much of which is gender, and it reads audio only: it needs
speaker ids, never emotion labels, so it may use the unlabelled target.

Which statistics a row gets, in this order:

1. ``speaker``: its speaker's statistics from :meth:`SpeakerNorm.fit`, when that speaker had
   at least ``min_utterances`` utterances there;
2. ``adapted``: otherwise, with ``adapt=True``, the statistics of the speaker's rows in the
   :meth:`~SpeakerNorm.transform` call itself, when there are at least ``min_utterances`` of
   them (a test-time adaptation; the items must then be frames, not pooled rows);
3. ``corpus``: otherwise its corpus's statistics (all frames of that corpus seen by ``fit``);
4. ``global``: otherwise the statistics of every frame seen by ``fit``.

Every call records which rows fell back (``last_report``). ``strength`` interpolates the
statistics from the row's corpus-level statistics (0: plain per-corpus standardisation) to the
speaker's (1): ``mean = (1-w) mean_corpus + w mean_speaker`` and
``std = std_corpus^(1-w) std_speaker^w``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fairser.levers._base import LeverError, check_strength, pack, register, unpack

__all__ = ["NormReport", "SpeakerNorm", "frame_moments"]

#: Smallest standard deviation used to divide.
STD_FLOOR = 1e-4
SOURCES = ("speaker", "adapted", "corpus", "global")


def _as_frames(item: Any, i: int) -> np.ndarray:
    x = np.asarray(item)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] == 0:
        raise LeverError(f"item {i} has shape {x.shape}; expected frames (L, T, D) or (T, D) "
                         "with T >= 1")
    return x


def frame_moments(items: Iterable[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-utterance frame count, sum and sum of squares (float64).

    Parameters
    ----------
    items : iterable of ndarray
        Frames of each utterance, ``(L, T, D)`` or ``(T, D)``.

    Returns
    -------
    counts, sums, sumsq : ndarray
        Shapes ``(n,)``, ``(n, L, D)``, ``(n, L, D)``.
    """
    counts, sums, sumsq = [], [], []
    for i, item in enumerate(items):
        x = _as_frames(item, i).astype(np.float64)
        counts.append(x.shape[1])
        sums.append(x.sum(axis=1))
        sumsq.append(np.square(x).sum(axis=1))
    if not counts:
        raise LeverError("no utterances given; pass at least one item of frames")
    if len({s.shape for s in sums}) != 1:
        raise LeverError(f"items have different (L, D): {sorted({s.shape for s in sums})}; use "
                         "one frontend and one set of layers")
    return np.asarray(counts, dtype=np.float64), np.stack(sums), np.stack(sumsq)


def _stats(counts: np.ndarray, sums: np.ndarray, sumsq: np.ndarray) -> tuple[np.ndarray, ...]:
    n = counts.sum()
    mean = sums.sum(axis=0) / n
    var = np.maximum(sumsq.sum(axis=0) / n - np.square(mean), 0.0)
    return mean, np.maximum(np.sqrt(var), STD_FLOOR)


def _keys(speakers: Sequence[Any], corpora: Sequence[Any] | None, n: int) -> tuple[
        np.ndarray, np.ndarray]:
    spk = np.asarray([str(s) for s in speakers], dtype=object)
    if len(spk) != n:
        raise LeverError(f"speakers has {len(spk)} values for {n} items; pass one per item")
    if corpora is None:
        corp = np.full(n, "", dtype=object)
    else:
        corp = np.asarray([str(c) for c in corpora], dtype=object)
        if len(corp) != n:
            raise LeverError(f"corpora has {len(corp)} values for {n} items; pass one per item")
    keys = np.asarray([f"{c}/{s}" if c else s for c, s in zip(corp, spk, strict=True)],
                      dtype=object)
    return keys, corp


@dataclass
class NormReport:
    """Which statistics the rows of one :meth:`SpeakerNorm.transform` call got.

    Attributes
    ----------
    counts : dict of str to int
        Rows per source (``speaker``, ``adapted``, ``corpus``, ``global``).
    fell_back : dict of str to (int, str)
        Speaker key (``corpus/speaker``) -> (rows, source) for every speaker whose rows did
        not get fitted speaker statistics.
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    fell_back: dict[str, tuple[int, str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line, e.g. ``2470 speaker, 0 adapted, 4 corpus, 0 global (1 speaker fell back)``."""
        parts = ", ".join(f"{self.counts[s]} {s}" for s in SOURCES)
        return f"{parts} ({len(self.fell_back)} speakers fell back)"


@register
class SpeakerNorm:
    """Per-speaker z-normalisation of frame features with corpus/global fallback.

    Parameters
    ----------
    min_utterances : int, default 3
        Fewest utterances a speaker needs for statistics of its own (at fit, and for the
        ``adapted`` statistics at transform).
    strength : float, default 1.0
        0: every row gets its corpus-level statistics; 1: full per-speaker statistics; in
        between the statistics are interpolated (module docstring).
    adapt : bool, default True
        Let unknown speakers with enough rows in a transform call use their own statistics.
    """

    kind: ClassVar[str] = "speaker-norm"

    def __init__(self, *, min_utterances: int = 3, strength: float = 1.0,
                 adapt: bool = True) -> None:
        if int(min_utterances) < 1:
            raise LeverError(f"min_utterances={min_utterances} must be >= 1; e.g. 3")
        self.min_utterances = int(min_utterances)
        self.strength = check_strength(strength)
        self.adapt = bool(adapt)
        self.speaker_keys: list[str] = []
        self.corpus_keys: list[str] = []
        self._spk: tuple[np.ndarray, np.ndarray] | None = None
        self._corpus: tuple[np.ndarray, np.ndarray] | None = None
        self._global: tuple[np.ndarray, np.ndarray] | None = None
        self.last_report: NormReport | None = None

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, items: Iterable[Any], *, speakers: Sequence[Any],
            corpora: Sequence[Any] | None = None) -> SpeakerNorm:
        """Fit speaker, corpus and global statistics on frames (no labels needed).

        Parameters
        ----------
        items : iterable of ndarray
            Frames of each utterance, ``(L, T, D)`` or ``(T, D)``.
        speakers : sequence
            Speaker of each item.
        corpora : sequence, optional
            Corpus of each item (speaker ids are only unique within a corpus).

        Returns
        -------
        SpeakerNorm
            ``self``.
        """
        return self.fit_moments(*frame_moments(items), speakers=speakers, corpora=corpora)

    def fit_moments(self, counts: np.ndarray, sums: np.ndarray, sumsq: np.ndarray, *,
                    speakers: Sequence[Any], corpora: Sequence[Any] | None = None
                    ) -> SpeakerNorm:
        """:meth:`fit` from :func:`frame_moments` (one pass over a large store)."""
        counts = np.asarray(counts, dtype=np.float64)
        keys, corp = _keys(speakers, corpora, len(counts))
        self._global = _stats(counts, sums, sumsq)
        self.corpus_keys = sorted(set(corp.tolist()) - {""})
        c_stats = [_stats(counts[m], sums[m], sumsq[m])
                   for m in (corp == c for c in self.corpus_keys)]
        self._corpus = self._stack(c_stats)
        uniq, n_utt = np.unique(keys, return_counts=True)
        self.speaker_keys = [str(k) for k, n in zip(uniq, n_utt, strict=True)
                             if n >= self.min_utterances]
        s_stats = [_stats(counts[m], sums[m], sumsq[m])
                   for m in (keys == k for k in self.speaker_keys)]
        self._spk = self._stack(s_stats)
        return self

    def _stack(self, stats: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
        shape = (0, *self._global[0].shape)
        if not stats:
            return np.zeros(shape), np.ones(shape)
        return np.stack([m for m, _ in stats]), np.stack([s for _, s in stats])

    def _check_fitted(self) -> None:
        if self._global is None:
            raise LeverError("SpeakerNorm is not fitted; call fit() first (or load a fitted one)")

    # -- applying --------------------------------------------------------------------------
    def row_stats(self, items: Sequence[Any] | None, *, speakers: Sequence[Any],
                  corpora: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std used for each row, ``(n, L, D)`` each; sets :attr:`last_report`.

        ``items`` (frames) are only read for ``adapted`` statistics; pass None to skip them.
        """
        self._check_fitted()
        n = len(speakers)
        keys, corp = _keys(speakers, corpora, n)
        g_mean, g_std = self._global
        mean = np.empty((n, *g_mean.shape))
        std = np.empty_like(mean)
        report = NormReport()
        spk_index = {k: i for i, k in enumerate(self.speaker_keys)}
        c_index = {k: i for i, k in enumerate(self.corpus_keys)}
        w = self.strength
        for key in dict.fromkeys(keys.tolist()):
            rows = np.flatnonzero(keys == key)
            c = c_index.get(corp[rows[0]])
            base = (g_mean, g_std) if c is None else (self._corpus[0][c], self._corpus[1][c])
            own, source = None, "global" if c is None else "corpus"
            if key in spk_index:
                i = spk_index[key]
                own, source = (self._spk[0][i], self._spk[1][i]), "speaker"
            elif self.adapt and items is not None and len(rows) >= self.min_utterances:
                own, source = _stats(*frame_moments(items[r] for r in rows)), "adapted"
            if own is None:
                m, s = base
            else:
                m = (1 - w) * base[0] + w * own[0]
                s = np.exp((1 - w) * np.log(base[1]) + w * np.log(own[1]))
            mean[rows], std[rows] = m, s
            report.counts[source] += len(rows)
            if source != "speaker":
                report.fell_back[key] = (len(rows), source)
        self.last_report = report
        return mean, std

    def transform(self, items: Sequence[Any], *, speakers: Sequence[Any],
                  corpora: Sequence[Any] | None = None) -> list[np.ndarray]:
        """Standardised copies (float32) of ``items``, each with its row's statistics.

        Parameters
        ----------
        items : sequence of ndarray
            ``(L, T, D)`` or ``(T, D)`` frames; pooled rows may be passed as ``(T=1, D)``
            items (standardisation is affine, so pooling before or after gives the same),
            but then ``adapted`` statistics would be those of pooled rows: fit every speaker.
        speakers, corpora : sequence
            As in :meth:`fit`.

        Returns
        -------
        list of ndarray
            Same shapes as the items. :attr:`last_report` says which rows fell back.
        """
        mean, std = self.row_stats(items, speakers=speakers, corpora=corpora)
        out = []
        for i, item in enumerate(items):
            x = np.asarray(item, dtype=np.float32)
            m, s = mean[i], std[i]
            if x.ndim == 2:
                m, s = m[0], s[0]
            out.append(((x - m[..., None, :]) / s[..., None, :]).astype(np.float32))
        return out

    # -- serialised form -------------------------------------------------------------------
    def to_dict(self, *, lists: bool = False) -> dict[str, Any]:
        """Serialised form (:mod:`fairser.levers._base`); keys of the statistics in ``state``."""
        self._check_fitted()
        return pack(self.kind, options={"min_utterances": self.min_utterances,
                                        "strength": self.strength, "adapt": self.adapt},
                    state={"speakers": self.speaker_keys, "corpora": self.corpus_keys},
                    arrays={"speaker_mean": self._spk[0], "speaker_std": self._spk[1],
                            "corpus_mean": self._corpus[0], "corpus_std": self._corpus[1],
                            "global_mean": self._global[0], "global_std": self._global[1]},
                    lists=lists)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpeakerNorm:
        """Inverse of :meth:`to_dict`."""
        names = ("speaker_mean", "speaker_std", "corpus_mean", "corpus_std", "global_mean",
                 "global_std")
        options, state, a = unpack(d, cls.kind, names)
        lever = cls(**options)
        lever.speaker_keys = [str(k) for k in state.get("speakers", [])]
        lever.corpus_keys = [str(k) for k in state.get("corpora", [])]
        g = a["global_mean"].astype(np.float64)
        shape = (0, *g.shape)

        def rows(m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            m, s = m.astype(np.float64), s.astype(np.float64)
            return (m.reshape(shape), s.reshape(shape)) if m.size == 0 else (m, s)

        lever._global = (g, a["global_std"].astype(np.float64))
        lever._spk = rows(a["speaker_mean"], a["speaker_std"])
        lever._corpus = rows(a["corpus_mean"], a["corpus_std"])
        if len(lever._spk[0]) != len(lever.speaker_keys) or len(lever._corpus[0]) != len(
                lever.corpus_keys):
            raise LeverError("serialised speaker-norm lever: statistics and keys disagree in "
                             "length; refit the lever")
        return lever
