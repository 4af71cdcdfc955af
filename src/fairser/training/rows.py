"""Reading features per batch: one row from the store -> the tensor the network sees.

:class:`RowReader` turns a row's ``(L, T, D)`` store entry into its training input: average
pooling over ``frame_stride`` frames and a centred crop to ``max_frames``
(:func:`fairser.training.pooling.pool_time`), a finiteness check,
and (``input_norm: per-corpus``) standardisation with its corpus's statistics. Features keep
the store's float16 when it has it (the network casts to float32), float32 otherwise.

:class:`StreamDataset` serves rows of one or more splits to a ``torch`` DataLoader
(:func:`make_loader`) whose batch sampler is the epoch's plan; :func:`collate` pads a batch to
its own longest row. Nothing here holds more than one batch of frames, so a fit's memory does
not grow with the corpus (a fit whose rows all fit in ``cache_mb`` reads each from the store
once and keeps it: :func:`row_cache`); :func:`streaming_stats` computes input statistics in
one pass. Every :data:`TRIM_EVERY` batches the dataset hands the C heap's free pages back to the
system (:func:`release_free_heap`): batches of varying lengths otherwise leave glibc's heap
fragmented, and the process's memory creeping up with the number of steps (measured: +190 MB
of anonymous memory at 32k utterances after one epoch without it, +110 MB with it).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fairser.errors import TrainingError
from fairser.training.data import FeatureSource, Split
from fairser.training.pooling import pool_time

__all__ = [
    "HALF_MAX",
    "TRIM_EVERY",
    "Batch",
    "MutableBatchSampler",
    "RowReader",
    "StreamDataset",
    "collate",
    "make_loader",
    "release_free_heap",
    "row_cache",
    "streaming_stats",
    "worker_start_method",
]

#: Largest finite float16 value.
HALF_MAX = 65504.0

#: Batches a :class:`StreamDataset` serves between two :func:`release_free_heap` calls.
TRIM_EVERY = 16

#: Corpus name, or utterance key (``input_norm: per-speaker``: the row's speaker statistics,
#: looked up before its corpus) -> (mean, std), each (L, D) float32 (std already floored).
NormTable = Mapping[str, tuple[np.ndarray, np.ndarray]]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


def release_free_heap() -> None:
    """Return the free pages of the C heap to the system (glibc ``malloc_trim``; elsewhere
    nothing). Live memory is untouched: only what the process would keep as free heap goes."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch single-threaded in the block (reading rows: many small operations, for which
    waking other threads costs more than it saves, badly so on a loaded machine)."""
    old = torch.get_num_threads()
    if old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class RowReader:
    """Reads one row's network input from a feature source.

    Attributes
    ----------
    features : FeatureSource
        The feature set (memory-mapped store entries).
    frame_stride, max_frames : int
        Average-pool this many frames into one; keep at most this many (centred crop).
    norm : mapping of str to (numpy.ndarray, numpy.ndarray), optional
        (mean, std) to standardise each row with, by utterance key (``per-speaker``) or else
        by corpus (``per-corpus``).
    transform : callable, optional
        ``transform(key, x) -> x`` applied after the standardisation (``erase_on: inputs``:
        the gender eraser of every frame vector).
    cache : dict of str to numpy.ndarray, optional
        Pooled rows (:meth:`raw`) kept by key once read, shared by every reader derived with
        :meth:`with_` (see :func:`raw_cache`): the passes of a small fit (input statistics,
        per-speaker statistics, pseudo labels, the loop) then read each row from the store
        once. Only for rows read in this process; never sent to DataLoader workers.
    """

    features: FeatureSource
    frame_stride: int
    max_frames: int
    norm: NormTable | None = None
    transform: Callable[[str, np.ndarray], np.ndarray] | None = None
    cache: dict[str, np.ndarray] | None = field(default=None, compare=False, repr=False)

    def raw(self, key: str, *, what: str = "features") -> np.ndarray:
        """Pooled and cropped (L, T', D) features of ``key`` (float16 if stored so).

        Raises
        ------
        TrainingError
            When the features are missing or hold NaN or inf.
        """
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        try:
            a = np.asarray(self.features[key])
        except KeyError:
            raise TrainingError(
                f"{what}: no features for {key}; extract features for this manifest"
            ) from None
        try:
            x = pool_time(a, self.frame_stride, self.max_frames, half=a.dtype == np.float16)
        except ValueError:
            raise TrainingError(
                f"{what}: features of {key} hold NaN or inf; re-extract them"
            ) from None
        if self.cache is not None:
            self.cache[key] = x
        return x

    def read(self, key: str, corpus: str, *, what: str = "features") -> np.ndarray:
        """The network input of one row: :meth:`raw`, standardised (per speaker or corpus)
        and transformed when set."""
        x = self.raw(key, what=what)
        if self.norm is not None:
            stats = self.norm.get(key)
            if stats is None:
                stats = self.norm[corpus]
            mean, std = (torch.from_numpy(v)[:, None, :] for v in stats)
            z = (torch.from_numpy(x).float() - mean) / std
            half = x.dtype == np.float16 and float(z.abs().max()) <= HALF_MAX
            x = z.half().numpy() if half else z.numpy()
        if self.transform is not None:
            y = np.asarray(self.transform(key, x))
            half = x.dtype == np.float16 and float(np.abs(y).max()) <= HALF_MAX
            x = y.astype(np.float16) if half else y.astype(np.float32)
        return x

    def with_(self, **changes: object) -> RowReader:
        """A copy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Batch:
    """A padded batch.

    Attributes
    ----------
    index : numpy.ndarray
        (B,) global row indices (see :class:`StreamDataset`).
    x : torch.Tensor
        (B, L, T, D) features, zero-padded to the longest row of the batch.
    lengths : torch.Tensor
        (B,) int64 real frame counts.
    """

    index: np.ndarray
    x: torch.Tensor
    lengths: torch.Tensor

    def mask(self, device: torch.device | None = None) -> torch.Tensor:
        """(B, T) bool, True on real frames (built on ``device``)."""
        lengths = self.lengths.to(device) if device is not None else self.lengths
        return torch.arange(self.x.shape[2], device=lengths.device)[None, :] < lengths[:, None]


def collate(items: Sequence[tuple[int, np.ndarray]]) -> Batch:
    """Stack (index, (L, t, D) array) items into one :class:`Batch` padded to its longest row."""
    arrays = [a for _, a in items]
    t_max = max(a.shape[1] for a in arrays)
    half = all(a.dtype == np.float16 for a in arrays)
    L, D = arrays[0].shape[0], arrays[0].shape[2]
    x = np.zeros((len(arrays), L, t_max, D), np.float16 if half else np.float32)
    lengths = np.zeros(len(arrays), np.int64)
    for i, a in enumerate(arrays):
        x[i, :, : a.shape[1]] = a
        lengths[i] = a.shape[1]
    index = np.fromiter((i for i, _ in items), np.int64, len(items))
    return Batch(index, torch.from_numpy(x), torch.from_numpy(lengths))


class StreamDataset(torch.utils.data.Dataset):
    """Rows of several splits behind one index space (split k's row i is ``offset_k + i``).

    Parameters
    ----------
    reader : RowReader
        How a row is read.
    splits : sequence of Split
        The splits, in index order (e.g. source train then target).
    what : str
        Name of the rows, for error messages.
    cache : bool
        Keep every row once read (the caller checked that all of them fit its memory budget,
        see :func:`input_bytes`); later epochs then read nothing from the store.
    """

    def __init__(
        self, reader: RowReader, splits: Sequence[Split], *, what: str, cache: bool = False
    ) -> None:
        self.reader = reader
        self.splits = tuple(splits)
        self.offsets = np.cumsum([0, *(len(s) for s in self.splits)])
        self.what = what
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.served = 0  # batches served (see TRIM_EVERY)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> tuple[int, np.ndarray]:
        if self.cache is not None and i in self.cache:
            return int(i), self.cache[i]
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        s, j = self.splits[k], int(i - self.offsets[k])
        x = self.reader.read(s.keys[j], str(s.corpora[j]), what=self.what)
        if self.cache is not None:
            self.cache[int(i)] = x
        return int(i), x

    def __getitems__(self, indices: list[int]) -> list[tuple[int, np.ndarray]]:
        """The rows of one batch (what a DataLoader asks for), read single-threaded; every
        :data:`TRIM_EVERY` batches, the free heap goes back to the system first (not when
        the rows are kept: reads then stop after the first epoch and the heap stays level)."""
        self.served += 1
        if self.served % TRIM_EVERY == 0 and self.cache is None:
            release_free_heap()
        with one_thread():
            return [self[i] for i in indices]


class MutableBatchSampler(torch.utils.data.Sampler):
    """A batch sampler whose batches are replaced before each pass (one epoch's plan)."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches:
            yield b.tolist()

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(
    dataset: StreamDataset, sampler: MutableBatchSampler, *, num_workers: int, pin: bool
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` following ``sampler``'s batches.

    It has its own generator, so that iterating it never draws from torch's global random
    state (the dropout masks of a fit are the same with or without workers), and it keeps its
    workers between epochs. Its workers start as :func:`worker_start_method` says.
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin,
        persistent_workers=num_workers > 0,
        generator=torch.Generator(),
        multiprocessing_context=worker_start_method() if num_workers > 0 else None,
    )


def worker_start_method() -> str | None:
    """How DataLoader workers start: ``fork`` wherever the platform offers it, else its default.

    Inside a ``processes:N`` grid worker (itself started with ``spawn``) Python's default start
    method is ``spawn`` too, so each DataLoader worker would import torch and fairser afresh and
    unpickle the dataset: 2-5 s per loader, several loaders per fit (measured: 4 small fits took
    54 s instead of 15 with one worker each). Forked workers start in milliseconds, as in a
    plain process. They only read the store and collate on the CPU, so a CUDA context in the
    parent is safe (the usual PyTorch practice). macOS and Windows keep their defaults.
    """
    return "fork" if sys.platform.startswith("linux") else None


def iterate(
    dataset: StreamDataset,
    batches: Iterable[np.ndarray],
    *,
    num_workers: int = 0,
    pin: bool = False,
) -> Iterator[Batch]:
    """Batches of ``dataset`` in the order given (a one-off loader, e.g. for prediction)."""
    sampler = MutableBatchSampler()
    sampler.batches = [np.asarray(b, np.int64) for b in batches]
    if not sampler.batches:
        return iter(())
    return iter(make_loader(dataset, sampler, num_workers=num_workers, pin=pin))


def input_bytes(reader: RowReader, splits: Sequence[Split]) -> int:
    """Bytes the network inputs of every row of ``splits`` take in memory (one row read)."""
    first = next((s for s in splits if len(s)), None)
    if first is None:
        return 0
    itemsize = reader.read(first.keys[0], str(first.corpora[0])).dtype.itemsize
    frames = sum(int(s.lengths.sum()) for s in splits)
    per_frame = int(reader.features.n_layers) * int(reader.features.dim) * itemsize
    return frames * per_frame + 200 * sum(len(s) for s in splits)  # + per-array overhead


def row_cache(
    reader: RowReader, splits: Sequence[Split], *, cache_mb: float, num_workers: int
) -> dict[str, np.ndarray] | None:
    """An empty cache of pooled rows for ``reader`` (see :class:`RowReader`), or None.

    Only when rows are read in this process (``num_workers`` 0) and twice the input of every
    row of ``splits`` fits in ``cache_mb`` MiB: twice, because the loop's datasets may keep
    their standardised copies beside the pooled rows.
    """
    if num_workers > 0 or cache_mb <= 0:
        return None
    cache: dict[str, np.ndarray] = {}  # input_bytes reads one row: it is kept
    return cache if 2 * input_bytes(reader.with_(cache=cache), splits) <= cache_mb * 2**20 else None


def streaming_stats(
    arrays: Iterable[np.ndarray], n_layers: int, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(layer, dim) mean and std over every frame of a stream of (L, t, D) arrays.

    Sums are accumulated in float64, one row at a time; the result is float32.
    """
    s1 = np.zeros((n_layers, dim), np.float64)
    s2 = np.zeros((n_layers, dim), np.float64)
    count = 0
    for a in arrays:
        a64 = a.astype(np.float64)
        s1 += a64.sum(1)
        s2 += np.square(a64).sum(1)
        count += a.shape[1]
    count = max(count, 1)
    mean = s1 / count
    var = np.clip(s2 / count - mean**2, 0.0, None)
    return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(var)).float()


def split_arrays(
    reader: RowReader,
    split: Split,
    rows: np.ndarray | None = None,
    *,
    raw: bool = True,
    what: str = "features",
) -> Iterator[np.ndarray]:
    """Each row's features of ``split`` (rows ``rows`` only when given), one at a time."""
    idx = range(len(split)) if rows is None else rows
    for i in idx:
        key, corpus = split.keys[int(i)], str(split.corpora[int(i)])
        with one_thread():
            x = reader.raw(key, what=what) if raw else reader.read(key, corpus, what=what)
        yield x
