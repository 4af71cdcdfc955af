"""Batch plans: shuffled or class-balanced source batches, mixed with target batches.

A plan is a list of index arrays, drawn from a NumPy generator seeded by (seed, stage, epoch),
so an epoch's batches are the same whether the run is fresh or resumed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["epoch_rng", "mixed_plan", "source_plan"]


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

    Returns
    -------
    list of numpy.ndarray
    """
    n = len(labels)
    if not balanced:
        return _split_batches(rng.permutation(n), batch_size)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    p = 1.0 / (len(classes) * counts[inverse])
    order = rng.choice(n, size=n, replace=True, p=p / p.sum())
    return _split_batches(order, batch_size)


def mixed_plan(
    labels: np.ndarray,
    n_target: int,
    *,
    batch_size: int,
    target_fraction: float,
    balanced: bool,
    rng: np.random.Generator,
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

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
    """
    n_tgt_b = min(max(1, round(batch_size * target_fraction)), batch_size - 1)
    src = source_plan(labels, batch_size=batch_size - n_tgt_b, balanced=balanced, rng=rng)
    need = sum(max(1, round(len(b) * n_tgt_b / (batch_size - n_tgt_b))) for b in src)
    reps = -(-need // n_target)
    stream = np.concatenate([rng.permutation(n_target) for _ in range(reps)])
    out, pos = [], 0
    for b in src:
        k = max(1, round(len(b) * n_tgt_b / (batch_size - n_tgt_b)))
        out.append((b, stream[pos : pos + k]))
        pos += k
    return out
