"""The one decision rule: scores -> hard labels.

Binary scores (shape ``(n,)``, P(positive)) become 1 where ``score >= threshold``; the
threshold is 0.5 unless given, and may differ per group (e.g. per-gender thresholds fitted for
demographic parity, see ``fairser.levers``). Multi-class scores (shape ``(n, C)``) become the
arg-max class. Every module that turns scores into predictions calls :func:`decide`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_THRESHOLD = 0.5


def decide(
    scores: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    group_thresholds: Mapping[str, float] | None = None,
    groups: Sequence[object] | np.ndarray | None = None,
) -> np.ndarray:
    """Hard labels (int64) from scores.

    Parameters
    ----------
    scores : ndarray
        ``(n,)`` positive-class probabilities, or ``(n, C)`` class scores.
    threshold : float, default 0.5
        Binary threshold for rows whose group has no entry in ``group_thresholds``.
    group_thresholds : mapping, optional
        Per-group binary thresholds, keyed by the string form of the group value.
    groups : array-like, optional
        One group value per row; required with ``group_thresholds``.

    Returns
    -------
    ndarray of int64, shape ``(n,)``
    """
    scores = np.asarray(scores)
    if scores.ndim == 2:
        return scores.argmax(axis=-1).astype(np.int64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D or 2-D, got shape {scores.shape}")
    cut = np.full(scores.shape, float(threshold))
    if group_thresholds:
        if groups is None:
            raise ValueError("group_thresholds needs groups (one value per row)")
        labels = np.asarray([str(g) for g in groups])
        if labels.shape != scores.shape:
            raise ValueError(f"groups has {labels.size} values for {scores.size} scores")
        for group, value in group_thresholds.items():
            cut[labels == str(group)] = float(value)
    return (scores >= cut).astype(np.int64)
