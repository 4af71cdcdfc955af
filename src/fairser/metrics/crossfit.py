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
) -> Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """A ``fold_transform`` that refits a transform per probe fold (cross-fitted probing).

    For a fold with training rows ``train``, the held-out groups are the values of ``groups``
    absent from ``groups[train]``; the transform is refitted with
    ``fit(pool_x[keep], pool_labels[keep])`` on the pool rows whose group is NOT held out, and
    the fold's probe reads ``apply(x, labels)`` for all probe rows. With the transform's own
    fitting rows as the pool (e.g. source training rows plus every target row, as a gender
    eraser is fitted), each fold gets the transform as deployed, except that it never saw the
    speakers it is probed on.

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

    Returns
    -------
    callable
        ``fold_transform(train_index) -> (x -> transformed x)`` for :func:`gender_probe` and
        :func:`mlp_gender_probe`.

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

    def per_fold(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        held = np.setdiff1d(spk, spk[train])
        keep = ~np.isin(pspk, held)
        apply = fit(px[keep], plab[keep])
        return lambda z: np.asarray(apply(np.asarray(z), lab), dtype=np.float64)

    return per_fold
