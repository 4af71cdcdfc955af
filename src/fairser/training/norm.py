"""Per-corpus input standardisation (``input_norm: per-corpus``).

With ``input_norm: source`` (the default) the network standardises every input with the
statistics of the source training frames, held in its
:class:`~fairser.models.blocks.InputProjection` buffers. With ``input_norm: per-corpus`` each
row is standardised with the per-(layer, dim) mean and standard deviation of the real frames
of ITS OWN corpus instead, once, when the features are stacked into tensors (never per step);
the network's buffers are then mean 0 and std 1. This is the usual unsupervised cross-corpus
step: it reads target audio, never target labels.

Which statistics a row gets:

- a corpus of the source training rows: the statistics of its source training rows;
- a corpus seen only in the target rows of stage 2: the statistics of those target rows;
- any other corpus (e.g. the target of ``source-only``, which trains on no target rows):
  the statistics of that corpus's rows among the rows being stacked, when there are at least
  ``min_rows`` of them (a test-time adaptation: predictions then depend on which rows of that
  corpus are predicted together); with fewer rows, the statistics of all source training rows,
  with one :class:`UserWarning` per corpus and call.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fairser.errors import TrainingError
from fairser.training.checkpoint import load_tensors, save_tensors
from fairser.training.data import feature_stats

__all__ = ["STD_FLOOR", "CorpusStats"]

#: Smallest standard deviation used to divide (the same floor as the network's buffers).
STD_FLOOR = 1e-4
_HALF_MAX = 65504.0
_CHUNK = 256

Stats = tuple[torch.Tensor, torch.Tensor]


def _stats(x: torch.Tensor, mask: torch.Tensor) -> Stats:
    mean, std = feature_stats(x, mask)
    return mean, std.clamp_min(STD_FLOOR)


@dataclass(frozen=True)
class CorpusStats:
    """Input standardisation statistics of every corpus a model was trained on.

    Attributes
    ----------
    stats : dict of str to (torch.Tensor, torch.Tensor)
        Corpus name -> (mean, std), each (L, D) float32, std already floored at
        :data:`STD_FLOOR`.
    fallback : (torch.Tensor, torch.Tensor)
        Statistics of all source training rows, for unseen corpora with too few rows.
    min_rows : int
        Fewest rows of an unseen corpus from which its own statistics are computed.
    """

    stats: dict[str, Stats]
    fallback: Stats
    min_rows: int

    @classmethod
    def from_splits(
        cls,
        parts: Sequence[tuple[torch.Tensor, torch.Tensor, np.ndarray]],
        *,
        fallback: Stats,
        min_rows: int,
    ) -> CorpusStats:
        """Statistics of each corpus, the first part naming a corpus giving its rows.

        Parameters
        ----------
        parts : sequence of (x, mask, corpora)
            Stacked features (N, L, T, D), masks (N, T) and the (N,) corpus name of each row,
            in priority order (source training rows first, then target rows).
        fallback : (torch.Tensor, torch.Tensor)
            Statistics of all source training rows.
        min_rows : int
            See :attr:`min_rows`.
        """
        stats: dict[str, Stats] = {}
        for x, mask, corpora in parts:
            names = np.asarray(corpora, dtype=object)
            for name in sorted(set(names.tolist())):
                if name in stats:
                    continue
                idx = torch.from_numpy(np.flatnonzero(names == name))
                stats[str(name)] = _stats(x[idx], mask[idx])
        mean, std = fallback
        return cls(stats, (mean.float(), std.float().clamp_min(STD_FLOOR)), int(min_rows))

    @property
    def corpora(self) -> tuple[str, ...]:
        """Names of the corpora with stored statistics."""
        return tuple(sorted(self.stats))

    def resolve(
        self, x: torch.Tensor, mask: torch.Tensor, corpora: Sequence[str], *, what: str
    ) -> dict[str, Stats]:
        """The statistics each corpus of the rows gets (see the module docstring)."""
        names = np.asarray(corpora, dtype=object)
        out: dict[str, Stats] = {}
        for name in sorted({str(c) for c in names.tolist()}):
            if name in self.stats:
                out[name] = self.stats[name]
                continue
            idx = np.flatnonzero(names == name)
            if len(idx) >= self.min_rows:
                out[name] = _stats(x[torch.from_numpy(idx)], mask[torch.from_numpy(idx)])
                continue
            warnings.warn(
                f"{what}: corpus {name!r} was not seen in training and has only {len(idx)} "
                f"row(s) here (< input_norm_min_rows={self.min_rows}); standardising it with "
                "the source statistics. Predict at least that many of its rows in one call "
                "for per-corpus statistics",
                UserWarning,
                stacklevel=3,
            )
            out[name] = self.fallback
        return out

    def normalise(
        self, x: torch.Tensor, mask: torch.Tensor, corpora: Sequence[str], *, what: str
    ) -> torch.Tensor:
        """Standardise each row of ``x`` with its corpus's statistics.

        Parameters
        ----------
        x : torch.Tensor
            (N, L, T, D) stacked features (float16 or float32).
        mask : torch.Tensor
            (N, T) bool, True on real frames; padded frames come out as 0.
        corpora : sequence of str
            (N,) corpus name of each row.
        what : str
            Name of the rows, for the warning.

        Returns
        -------
        torch.Tensor
            Same shape and dtype as ``x`` (float16 is promoted to float32 only if a value
            would overflow it).
        """
        names = np.asarray(corpora, dtype=object)
        if len(names) != x.shape[0]:
            raise TrainingError(
                f"{what}: {len(names)} corpus names for {x.shape[0]} rows; pass one per row"
            )
        out = torch.empty_like(x)
        for name, (mean, std) in self.resolve(x, mask, names, what=what).items():
            rows = np.flatnonzero(names == name)
            for i in range(0, len(rows), _CHUNK):
                idx = torch.from_numpy(rows[i : i + _CHUNK])
                z = (x[idx].float() - mean[None, :, None, :]) / std[None, :, None, :]
                z = z * mask[idx][:, None, :, None]
                if out.dtype == torch.float16 and float(z.abs().max()) > _HALF_MAX:
                    out = out.float()
                out[idx] = z.to(out.dtype)
        return out

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the statistics as one safetensors file (corpus names in its metadata)."""
        names = self.corpora
        tensors = {"fallback.mean": self.fallback[0], "fallback.std": self.fallback[1]}
        for i, name in enumerate(names):
            tensors[f"corpus.{i}.mean"], tensors[f"corpus.{i}.std"] = self.stats[name]
        save_tensors(path, tensors, {"corpora": list(names), "min_rows": self.min_rows})

    @classmethod
    def load(cls, path: Path) -> CorpusStats:
        """Read a file written by :meth:`save`.

        Raises
        ------
        TrainingError
            When the file is missing, unreadable or incomplete.
        """
        if not Path(path).exists():
            raise TrainingError(
                f"{path}: missing; a model trained with input_norm: per-corpus needs its "
                "per-corpus statistics, save it again with FittedModel.save"
            )
        tensors, meta = load_tensors(Path(path))
        try:
            stats = {
                str(name): (tensors[f"corpus.{i}.mean"], tensors[f"corpus.{i}.std"])
                for i, name in enumerate(meta["corpora"])
            }
            fallback = (tensors["fallback.mean"], tensors["fallback.std"])
            min_rows = int(meta["min_rows"])
        except (KeyError, TypeError, ValueError):
            raise TrainingError(
                f"{path}: incomplete per-corpus statistics; save the model again"
            ) from None
        return cls(stats, fallback, min_rows)
