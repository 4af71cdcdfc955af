"""``pa-fairw``: PA with fairness-adaptive weighting of the source (our definition).

After each epoch, every (group, class) cell's error rate is measured on that epoch's
predictions of the source training rows: for the positive class that is the false-negative
rate (1 - TPR), for a negative class the false-positive rate. The cell's target weight is its
smoothed error divided by the mean smoothed error of the same class over the groups,
``t(g, y) = (e(g, y) + eps) / mean_g' (e(g', y) + eps)``, and the weight moves toward it:
``w <- (1 - rate) w + rate t``. The worse group of a class gains weight, which pushes the
groups' true- and false-positive rates together; dividing by the class mean leaves the balance
between classes untouched. Source-only (in-processing): no target labels are used.
"""

from __future__ import annotations

import numpy as np

from fairser.methods.pa import PA

__all__ = ["PAFairW", "fairw_update", "group_error_rates"]


def group_error_rates(
    y: np.ndarray, g: np.ndarray, pred: np.ndarray, n_groups: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Error rate and row count of every (group, class) cell, both (G, C); NaN when empty."""
    err = np.full((n_groups, n_classes), np.nan)
    cnt = np.zeros((n_groups, n_classes), dtype=np.int64)
    for gi in range(n_groups):
        for c in range(n_classes):
            sel = (g == gi) & (y == c)
            cnt[gi, c] = int(sel.sum())
            if cnt[gi, c]:
                err[gi, c] = float((pred[sel] != c).mean())
    return err, cnt


def fairw_update(
    table: np.ndarray, errors: np.ndarray, *, rate: float = 0.5, eps: float = 0.02
) -> np.ndarray:
    """One FairW step: move each cell's weight toward its relative error within its class.

    Parameters
    ----------
    table : numpy.ndarray
        (G, C) current weights.
    errors : numpy.ndarray
        (G, C) error rates, NaN for empty cells (left unchanged).
    rate : float
        Step in (0, 1]; 1 jumps to the target.
    eps : float
        Smoothing added to every error rate, so a zero error does not zero a weight.

    Returns
    -------
    numpy.ndarray
        The new (G, C) table.
    """
    new = table.astype(np.float64).copy()
    e = errors + eps
    for c in range(table.shape[1]):
        col = e[:, c]
        ok = ~np.isnan(col)
        if ok.sum() < 2:
            continue
        target = col[ok] / col[ok].mean()
        new[ok, c] = (1.0 - rate) * new[ok, c] + rate * target
    return new


class PAFairW(PA):
    """PA whose source emotion loss weights follow the groups' error rates."""

    name = "pa-fairw"

    label = "PA-FairW"

    uses_groups = True

    def update_table(
        self, table: np.ndarray, *, y: np.ndarray, g: np.ndarray, pred: np.ndarray
    ) -> np.ndarray:
        """One :func:`fairw_update` step from the epoch's error rates per (group, class)."""
        err, _ = group_error_rates(y, g, pred, table.shape[0], table.shape[1])
        return fairw_update(table, err, rate=self.options.fairw_rate, eps=self.options.fairw_eps)
