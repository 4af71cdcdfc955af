"""Pseudo attribute labels for the target (``target_gender: pseudo``).

A logistic regression on mean-pooled input features is trained on the source training rows of
known attribute and predicts the target's; its accuracy on target rows with a true label is
returned so that it can be reported. Each corpus's pooled vectors are standardised with that
corpus's own statistics (no labels needed), so that a shift between corpora does not push
every target row to one side of the decision boundary. Rows are read and pooled one at a time
(:func:`fairser.metrics.pool_frames`); only the pooled vectors are held.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fairser.errors import TrainingError
from fairser.metrics import pool_frames
from fairser.training.data import Split
from fairser.training.rows import RowReader, split_arrays

__all__ = ["pooled_inputs", "pseudo_groups"]


def pooled_inputs(
    reader: RowReader, split: Split, mean: torch.Tensor, std: torch.Tensor
) -> np.ndarray:
    """(N, L*D) standardised features averaged over each utterance's real frames."""
    if len(split) == 0:
        return np.zeros((0, int(mean.numel())), np.float32)
    pooled = pool_frames(split_arrays(reader, split, raw=False, what="pseudo labels"))
    m = mean.reshape(-1).numpy()
    s = std.clamp_min(1e-4).reshape(-1).numpy()
    return (pooled - m) / s


def _zscore(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(0)) / np.maximum(a.std(0), 1e-6)


def pseudo_groups(
    reader: RowReader,
    source: Split,
    target: Split,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    seed: int,
) -> tuple[np.ndarray, float | None]:
    """Predict the target's attribute groups from a classifier trained on the source.

    Returns
    -------
    groups : numpy.ndarray
        (N_target,) predicted group indices.
    accuracy : float or None
        Accuracy against the target's true groups where known (None when none is known).

    Raises
    ------
    TrainingError
        When the source has fewer than two attribute groups to learn from.
    """
    ys = source.g
    known = ys >= 0
    if len(np.unique(ys[known])) < 2:
        raise TrainingError(
            "target_gender: pseudo needs source training rows of at least two attribute "
            "values; check the attribute column of the source manifest"
        )
    clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    clf.fit(_zscore(pooled_inputs(reader, source, mean, std))[known], ys[known])
    pred = clf.predict(_zscore(pooled_inputs(reader, target, mean, std))).astype(np.int64)
    true = target.g
    tk = true >= 0
    acc = float((pred[tk] == true[tk]).mean()) if tk.any() else None
    return pred, acc
