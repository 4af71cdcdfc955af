"""``pa-rew``: PA with reweighing of the source (Kamiran and Calders, 2012).

Every (group, class) cell gets the weight ``w(g, y) = P(g) P(y) / P(g, y)``, estimated on the
source training rows of known group (AIF360's ``Reweighing``). It is a no-op (all weights 1)
when the source is balanced by group within each class, as RAVDESS is.
"""

from __future__ import annotations

import numpy as np

from fairser.methods.pa import PA

__all__ = ["PARew", "reweighing_table"]


def reweighing_table(y: np.ndarray, g: np.ndarray, n_groups: int, n_classes: int) -> np.ndarray:
    """Reweighing weights ``P(g) P(y) / P(g, y)`` per cell, shape (n_groups, n_classes).

    Rows with ``g < 0`` are ignored; empty cells get weight 1 (no row uses them).
    """
    known = g >= 0
    y, g = y[known], g[known]
    n = len(y)
    table = np.ones((n_groups, n_classes), dtype=np.float64)
    if n == 0:
        return table
    joint = np.zeros((n_groups, n_classes), dtype=np.float64)
    np.add.at(joint, (g, y), 1.0)
    pg = joint.sum(1) / n
    py = joint.sum(0) / n
    cell = joint / n
    nz = cell > 0
    table[nz] = (pg[:, None] * py[None, :])[nz] / cell[nz]
    return table


class PARew(PA):
    """PA whose source emotion loss is reweighed per (group, class)."""

    name = "pa-rew"

    label = "PA-ReW"

    uses_groups = True

    def initial_table(
        self, y: np.ndarray, g: np.ndarray, n_groups: int, n_classes: int
    ) -> np.ndarray:
        """The reweighing table of the source training rows (:func:`reweighing_table`)."""
        return reweighing_table(y, g, n_groups, n_classes)
