"""Batch plans: shuffled or class-balanced source batches, mixed with target batches.

A plan is a list of index arrays, drawn from a NumPy generator seeded by (seed, stage, epoch),
so an epoch's batches are the same whether the run is fresh or resumed, and on every rank of a
distributed fit. With length bucketing (:func:`bucket_batches`) the rows of each pool of
:data:`BUCKET_POOL` consecutive batches are regrouped by length, so that a batch is padded to
lengths close to its own; :func:`shard` gives each rank of a distributed fit a disjoint share
of every batch, so that every rank takes the same number of steps.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BUCKET_POOL",
    "bucket_batches",
    "epoch_rng",
    "length_order",
    "mixed_plan",
    "shard",
    "source_plan",
]

#: Batches whose rows are regrouped by length together (``bucketing: true``).
BUCKET_POOL = 16


def epoch_rng(seed: int, stage: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """Independent generator for one (seed, stage, epoch, stream)."""
    return np.random.default_rng([int(seed), int(stage), int(epoch), int(stream)])


def _split_batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Cut ``order`` into ceil(n / batch_size) nearly equal batches (no tiny last batch)."""
    n = len(order)
    if n == 0:
        return []
    n_batches = max(1, -(-n // batch_size))
    return [b for b in np.array_split(order, n_batches) if len(b)]


def source_plan(
    labels: np.ndarray,
    *,
    batch_size: int,
    balanced: bool,
    rng: np.random.Generator,
    lengths: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Batches of source row indices for one epoch.

    Parameters
    ----------
    labels : numpy.ndarray
        (N,) class labels of the trainable source rows (all >= 0).
    batch_size : int
        Rows per batch.
    balanced : bool
        Draw N rows with replacement, each class equally likely (class-balanced batches);
        otherwise a plain permutation.
    rng : numpy.random.Generator
        Source of randomness.
    lengths : numpy.ndarray, optional
        (N,) frame counts: bucket the batches by length (:func:`bucket_batches`).

    Returns
    -------
    list of numpy.ndarray
    """
    n = len(labels)
    if not balanced:
        order = rng.permutation(n)
    else:
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        p = 1.0 / (len(classes) * counts[inverse])
        order = rng.choice(n, size=n, replace=True, p=p / p.sum())
    batches = _split_batches(order, batch_size)
    return batches if lengths is None else bucket_batches(batches, lengths, rng=rng)


def bucket_batches(
    batches: list[np.ndarray], lengths: np.ndarray, *, rng: np.random.Generator
) -> list[np.ndarray]:
    """Regroup rows by length within pools of :data:`BUCKET_POOL` consecutive batches.

    Each pool's rows are sorted by length (stable) and cut again into batches of the same
    sizes; the order of all batches is then shuffled. Every row keeps its number of
    occurrences, every batch its size.
    """
    out: list[np.ndarray] = []
    for p0 in range(0, len(batches), BUCKET_POOL):
        pool = batches[p0 : p0 + BUCKET_POOL]
        rows = np.concatenate(pool)
        rows = rows[np.argsort(lengths[rows], kind="stable")]
        cuts = np.cumsum([len(b) for b in pool])[:-1]
        out.extend(np.split(rows, cuts))
    return [out[i] for i in rng.permutation(len(out))]


def length_order(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of all rows, longest first, for evaluation (each row exactly once)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s share of a batch: every ``world``-th row (disjoint, sizes within 1)."""
    return batch[rank::world]


def mixed_plan(
    labels: np.ndarray,
    n_target: int,
    *,
    batch_size: int,
    target_fraction: float,
    balanced: bool,
    rng: np.random.Generator,
    lengths: np.ndarray | None = None,
    target_lengths: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(source indices, target indices) per step of one stage-2 epoch.

    An epoch is one pass over the source; each batch holds about
    ``batch_size * (1 - target_fraction)`` source rows and the rest target rows, the target
    rows cycling through fresh permutations of the target set.

    Parameters
    ----------
    labels : numpy.ndarray
        (N,) class labels of the source rows.
    n_target : int
        Number of target rows (at least 1).
    batch_size : int
        Rows per mixed batch.
    target_fraction : float
        Share of target rows in each batch, in (0, 1).
    balanced : bool
        Class-balanced source batches (see :func:`source_plan`).
    rng : numpy.random.Generator
        Source of randomness.
    lengths, target_lengths : numpy.ndarray, optional
        Frame counts of the source and target rows: bucket by length. The source batches are
        bucketed as in :func:`source_plan`; within each pool of steps, the target rows are
        sorted by length and the longer ones go to the steps with the longer source rows.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
    """
    n_tgt_b = min(max(1, round(batch_size * target_fraction)), batch_size - 1)
    src = source_plan(
        labels, batch_size=batch_size - n_tgt_b, balanced=balanced, rng=rng, lengths=lengths
    )
    ks = [max(1, round(len(b) * n_tgt_b / (batch_size - n_tgt_b))) for b in src]
    reps = -(-sum(ks) // n_target)
    stream = np.concatenate([rng.permutation(n_target) for _ in range(reps)])
    if lengths is None or target_lengths is None:
        pos, tgt = 0, []
        for k in ks:
            tgt.append(stream[pos : pos + k])
            pos += k
        return list(zip(src, tgt, strict=True))
    tgt_b: list[np.ndarray] = [np.zeros(0, np.int64)] * len(src)
    pos = 0
    for p0 in range(0, len(src), BUCKET_POOL):
        steps = list(range(p0, min(p0 + BUCKET_POOL, len(src))))
        need = sum(ks[s] for s in steps)
        chunk = stream[pos : pos + need]
        pos += need
        chunk = chunk[np.argsort(target_lengths[chunk], kind="stable")]
        c = 0
        for s in sorted(steps, key=lambda s: (int(lengths[src[s]].max()), s)):
            tgt_b[s] = chunk[c : c + ks[s]]
            c += ks[s]
    return list(zip(src, tgt_b, strict=True))
