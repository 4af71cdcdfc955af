"""Cross-fitted probing: a fitted transform (a gender eraser) refitted per probe fold.

Embeddings that went through a FITTED transform must not be probed on the rows the transform
was fitted on: an eraser fitted in-sample makes the genders' means coincide over ALL its rows,
so a probe trained on some speakers reads the held-out speakers' gender inverted and scores
far BELOW chance (an artefact: gender is still decodable). :func:`refit_per_fold` builds the
``fold_transform`` of :func:`fairser.metrics.probe.gender_probe` and
:func:`~fairser.metrics.probe.mlp_gender_probe` that refits the transform in each fold on its
fitting rows minus the fold's held-out speakers. The transform's recipe comes in as a function:
this layer imports no lever (levers sit above metrics).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from fairser.metrics._core import MetricError, as_1d

__all__ = ["FitTransform", "refit_per_fold"]

#: ``fit(x, labels) -> apply``; ``apply(z, labels) -> z'`` (labels: one per row of z).
FitTransform = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray, np.ndarray], Any]]


def refit_per_fold(
    fit: FitTransform,
    *,
    groups: Any,
    labels: Any,
    pool_x: Any,
    pool_labels: Any,
    pool_groups: Any,
    disjoint: bool = False,
    seed: int = 0,
) -> Callable[[np.ndarray], Any]:
    """A ``fold_transform`` that refits a transform per probe fold (cross-fitted probing).

    For a fold with training rows ``train``, the held-out groups are the values of ``groups``
    absent from ``groups[train]``; the transform is refitted with
    ``fit(pool_x[keep], pool_labels[keep])`` on the pool rows whose group is NOT held out, and
    the fold's probe reads ``apply(x, labels)`` for all probe rows. With the transform's own
    fitting rows as the pool (e.g. source training rows plus every target row, as a gender
    eraser is fitted), each fold gets the transform as deployed, except that it never saw the
    speakers it is probed on.

    That transform is fitted on the probe's own training rows too; for LEACE this means the
    LOGISTIC probe has nothing to learn and scores 0.5 by construction. ``disjoint=True``
    measures instead whether a probe trained on speakers the transform never saw reads the
    held-out speakers: the fold's training speakers are split into two halves (balanced by
    label, seeded); the transform is refitted without the held-out speakers and one half, the
    probe trains on the other half, then the halves swap (the transform sees fewer speakers
    than deployed, so the figure errs on the side of leakage).

    Parameters
    ----------
    fit : callable
        ``fit(x, labels) -> apply`` fits the transform on rows ``(m, E)`` with their concept
        labels (e.g. ``corpus/gender``); ``apply(z, labels)`` transforms rows ``z`` given
        theirs (a quadratic eraser needs them).
    groups : array-like of shape (n,)
        Speaker of each probe row (the probe's ``groups``).
    labels : array-like of shape (n,)
        Concept label of each probe row, passed to ``apply``.
    pool_x : array-like of shape (m, E)
        Rows the transform may be fitted on (probe rows included or not).
    pool_labels, pool_groups : array-like of shape (m,)
        Their concept labels and speakers (a source speaker must not share a name with a
        probe speaker unless it is the same speaker).
    disjoint : bool, default False
        Train each probe on speakers the transform never saw (above).
    seed : int, default 0
        Seed of the split into halves.

    Returns
    -------
    callable
        ``fold_transform(train_index) -> (x -> transformed x)`` for :func:`gender_probe` and
        :func:`mlp_gender_probe`; with ``disjoint`` a list of two ``(transform, rows)``.

    Raises
    ------
    MetricError
        When the lengths disagree or the pool is not a 2-d array.
    """
    spk = as_1d(groups, name="groups").astype(str)
    lab = np.asarray(labels, dtype=object)
    px = np.asarray(pool_x, dtype=np.float64)
    plab = np.asarray(pool_labels, dtype=object)
    pspk = as_1d(pool_groups, name="pool_groups").astype(str)
    if len(lab) != len(spk):
        raise MetricError(f"labels has {len(lab)} rows but groups {len(spk)}; one per probe row")
    if px.ndim != 2 or not len(px) == len(plab) == len(pspk):
        raise MetricError(
            f"pool_x has shape {px.shape}, pool_labels {len(plab)} rows, pool_groups "
            f"{len(pspk)}; pass (m, E) rows with one label and one speaker each"
        )

    def refit(held: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        apply = fit(px[~np.isin(pspk, held)], plab[~np.isin(pspk, held)])
        return lambda z: np.asarray(apply(np.asarray(z), lab), dtype=np.float64)

    def per_fold(train: np.ndarray) -> Any:
        held = np.setdiff1d(spk, spk[train])
        if not disjoint:
            return refit(held)
        names = np.unique(spk[train])
        rng = np.random.default_rng([seed, zlib.crc32("\0".join(names).encode())])
        first = {n: str(lab[train][spk[train] == n][0]) for n in names}
        order: list[str] = []  # each label's speakers shuffled, then dealt alternately
        for value in sorted(set(first.values())):
            order.extend(str(n) for n in rng.permutation([n for n in names if first[n] == value]))
        halves = [order[0::2], order[1::2]]
        return [(refit(np.concatenate([held, halves[1 - k]])),
                 train[np.isin(spk[train], halves[1 - k])]) for k in (0, 1)]

    return per_fold
