"""Pareto fronts of accuracy against unfairness: the configurations no other one beats.

A configuration (a method, a sweep point of its options, a lever strength) is *dominated* when
another is at least as good on both axes and strictly better on one. The front is the set of
configurations that are not dominated; points with a NaN coordinate are never on it and never
dominate. Used by the report's trade-off figures and by anyone choosing a configuration.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairser.metrics._core import MetricError

__all__ = ["pareto_front", "pareto_mask"]


def pareto_mask(x: Any, y: Any, *, maximize_x: bool = True, minimize_y: bool = True) -> np.ndarray:
    """Mask of the non-dominated points of two coordinate arrays.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Coordinates of each point.
    maximize_x : bool, default True
        Whether a larger ``x`` is better (e.g. UAR); False: smaller is better.
    minimize_y : bool, default True
        Whether a smaller ``y`` is better (e.g. a fairness gap); False: larger is better.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True for points on the front. Identical points are all on it or all off it.

    Raises
    ------
    MetricError
        If ``x`` and ``y`` are not 1-D arrays of one length.
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise MetricError(f"pareto: x {a.shape} and y {b.shape}; pass two 1-D arrays of one length")
    gain = a if maximize_x else -a  # larger is better on both after the flips
    cost = b if minimize_y else -b
    ok = np.isfinite(a) & np.isfinite(b)
    # dominated[i]: some finite j is at least as good on both and strictly better on one
    at_least = (gain[None, :] >= gain[:, None]) & (cost[None, :] <= cost[:, None])
    strictly = (gain[None, :] > gain[:, None]) | (cost[None, :] < cost[:, None])
    dominated = (at_least & strictly & ok[None, :]).any(axis=1)
    return ok & ~dominated


def pareto_front(
    df: pd.DataFrame, *, x: str, y: str, maximize_x: bool = True, minimize_y: bool = True
) -> pd.Series:
    """Which rows of a table are on the Pareto front of two of its columns.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per configuration (e.g. the mean over seeds and tasks of a sweep point).
    x, y : str
        Column names, e.g. ``x="uar"`` and ``y="dsp"``.
    maximize_x : bool, default True
        Whether a larger ``x`` is better.
    minimize_y : bool, default True
        Whether a smaller ``y`` is better.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``df``: True for rows no other row beats on both columns (rows with a
        NaN in either column are False).

    Raises
    ------
    MetricError
        If a column is missing.

    Examples
    --------
    >>> t = pd.DataFrame({"uar": [0.7, 0.6, 0.5], "dsp": [0.2, 0.1, 0.15]})
    >>> pareto_front(t, x="uar", y="dsp").tolist()
    [True, True, False]
    """
    missing = [c for c in (x, y) if c not in df.columns]
    if missing:
        raise MetricError(
            f"pareto_front: column(s) {missing} not in the table; columns are {list(df.columns)}"
        )
    mask = pareto_mask(
        pd.to_numeric(df[x], errors="coerce").to_numpy(float),
        pd.to_numeric(df[y], errors="coerce").to_numpy(float),
        maximize_x=maximize_x,
        minimize_y=minimize_y,
    )
    return pd.Series(mask, index=df.index, name="pareto")
