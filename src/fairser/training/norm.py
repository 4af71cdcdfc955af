"""Per-corpus input standardisation (``input_norm: per-corpus``).

With ``input_norm: source`` (the default) the network standardises every input with the
statistics of the source training frames, held in its
:class:`~fairser.models.blocks.InputProjection` buffers. With ``input_norm: per-corpus`` each
row is standardised with the per-(layer, dim) mean and standard deviation of the real frames
of ITS OWN corpus instead, as each row is read from the store
(:class:`~fairser.training.rows.RowReader`); the network's buffers are then mean 0 and std 1.
The statistics are computed in one streaming pass over each corpus's rows. This is the
usual unsupervised cross-corpus step: it reads target audio, never target labels.

Which statistics a row gets:

- a corpus of the source training rows: the statistics of its source training rows;
- a corpus seen only in the target rows of stage 2: the statistics of those target rows;
- any other corpus (e.g. the target of ``source-only``, which trains on no target rows):
  the statistics of that corpus's rows among the rows being predicted, when there are at least
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
from fairser.training.data import Split
from fairser.training.rows import NormTable, RowReader, split_arrays, streaming_stats

__all__ = ["STD_FLOOR", "CorpusStats"]

#: Smallest standard deviation used to divide (the same floor as the network's buffers).
STD_FLOOR = 1e-4

Stats = tuple[torch.Tensor, torch.Tensor]


def _stats(reader: RowReader, split: Split, rows: np.ndarray, what: str) -> Stats:
    n_layers, dim = int(reader.features.n_layers), int(reader.features.dim)
    mean, std = streaming_stats(split_arrays(reader, split, rows, what=what), n_layers, dim)
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
        reader: RowReader,
        parts: Sequence[Split],
        *,
        fallback: Stats,
        min_rows: int,
    ) -> CorpusStats:
        """Statistics of each corpus, the first split naming a corpus giving its rows.

        Parameters
        ----------
        reader : RowReader
            Reads the rows (its ``norm`` is ignored: statistics are of the raw features).
        parts : sequence of Split
            In priority order (source training rows first, then target rows).
        fallback : (torch.Tensor, torch.Tensor)
            Statistics of all source training rows.
        min_rows : int
            See :attr:`min_rows`.
        """
        stats: dict[str, Stats] = {}
        for split in parts:
            names = split.corpora
            for name in sorted(set(names.tolist())):
                if name in stats:
                    continue
                stats[str(name)] = _stats(reader, split, np.flatnonzero(names == name), "norm")
        mean, std = fallback
        return cls(stats, (mean.float(), std.float().clamp_min(STD_FLOOR)), int(min_rows))

    @property
    def corpora(self) -> tuple[str, ...]:
        """Names of the corpora with stored statistics."""
        return tuple(sorted(self.stats))

    def resolve(self, reader: RowReader, split: Split, *, what: str) -> dict[str, Stats]:
        """The statistics each corpus of ``split``'s rows gets (see the module docstring)."""
        names = split.corpora
        out: dict[str, Stats] = {}
        for name in sorted({str(c) for c in names.tolist()}):
            if name in self.stats:
                out[name] = self.stats[name]
                continue
            idx = np.flatnonzero(names == name)
            if len(idx) >= self.min_rows:
                out[name] = _stats(reader, split, idx, what)
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

    def table(self, reader: RowReader, split: Split, *, what: str) -> NormTable:
        """:meth:`resolve` as the (mean, std) NumPy table a :class:`RowReader` applies."""
        return {
            name: (mean.numpy(), std.numpy())
            for name, (mean, std) in self.resolve(reader, split, what=what).items()
        }

    def reader(self, reader: RowReader, split: Split, *, what: str) -> RowReader:
        """``reader`` standardising the rows of ``split`` with their corpora's statistics."""
        base = reader.with_(norm=None, transform=None)
        return base.with_(norm=self.table(base, split, what=what))

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
