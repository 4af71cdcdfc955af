"""Pseudo attribute labels for the target (``target_gender: pseudo``).

A logistic regression on mean-pooled input features is trained on the source training rows of
known attribute and predicts the target's; its accuracy on target rows with a true label is
returned so that it can be reported. Each corpus's pooled vectors are standardised with that
corpus's own statistics (no labels needed), so that a shift between corpora does not push
every target row to one side of the decision boundary.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fairser.errors import TrainingError
from fairser.training.data import Split

__all__ = ["pooled_inputs", "pseudo_groups"]


def pooled_inputs(split: Split, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """(N, L*D) standardised features averaged over each utterance's real frames."""
    z = (split.x.float() - mean[None, :, None, :]) / std.clamp_min(1e-4)[None, :, None, :]
    m = split.mask[:, None, :, None].float()
    pooled = (z * m).sum(2) / m.sum(2).clamp_min(1.0)
    return pooled.reshape(len(split), -1).numpy()


def _zscore(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(0)) / np.maximum(a.std(0), 1e-6)


def pseudo_groups(
    source: Split, target: Split, *, mean: torch.Tensor, std: torch.Tensor, seed: int
) -> tuple[torch.Tensor, float | None]:
    """Predict the target's attribute groups from a classifier trained on the source.

    Returns
    -------
    groups : torch.Tensor
        (N_target,) predicted group indices.
    accuracy : float or None
        Accuracy against the target's true groups where known (None when none is known).

    Raises
    ------
    TrainingError
        When the source has fewer than two attribute groups to learn from.
    """
    ys = source.g.numpy()
    known = ys >= 0
    if len(np.unique(ys[known])) < 2:
        raise TrainingError(
            "target_gender: pseudo needs source training rows of at least two attribute "
            "values; check the attribute column of the source manifest"
        )
    clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    clf.fit(_zscore(pooled_inputs(source, mean, std))[known], ys[known])
    pred = clf.predict(_zscore(pooled_inputs(target, mean, std))).astype(np.int64)
    true = target.g.numpy()
    tk = true >= 0
    acc = float((pred[tk] == true[tk]).mean()) if tk.any() else None
    return torch.from_numpy(pred), acc
