"""Pareto fronts on hand-made points: orientation flags, ties, NaN, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairser.metrics import MetricError, pareto_front, pareto_mask


def _points() -> pd.DataFrame:
    # a: most accurate; b, c: fairer at a cost; d beaten by c; e beaten by a (same uar, worse
    # gap); f has no gap (NaN) and is never on the front
    return pd.DataFrame(
        {
            "uar": [0.70, 0.65, 0.60, 0.55, 0.70, 0.90],
            "dsp": [0.20, 0.10, 0.05, 0.06, 0.25, np.nan],
        },
        index=list("abcdef"),
    )


def test_front_of_accuracy_and_gap() -> None:
    front = pareto_front(_points(), x="uar", y="dsp")
    assert front.index.tolist() == list("abcdef")
    assert front[front].index.tolist() == ["a", "b", "c"]


def test_flags_turn_the_axes_around() -> None:
    df = _points()
    # the gap on x (smaller better), UAR on y (larger better): the same front
    same = pareto_front(df, x="dsp", y="uar", maximize_x=False, minimize_y=False)
    assert same[same].index.tolist() == ["a", "b", "c"]
    # reward unfairness and punish accuracy: the opposite corner
    worst = pareto_front(df, x="uar", y="dsp", maximize_x=False, minimize_y=False)
    assert worst[worst].index.tolist() == ["b", "d", "e"]


def test_ties_are_all_on_the_front_and_nan_never() -> None:
    np.testing.assert_array_equal(pareto_mask([0.5, 0.5], [0.1, 0.1]), [True, True])
    np.testing.assert_array_equal(pareto_mask([0.5, np.nan], [0.1, 0.0]), [True, False])
    np.testing.assert_array_equal(pareto_mask([], []), np.array([], dtype=bool))


def test_bad_input() -> None:
    with pytest.raises(MetricError, match="not in the table"):
        pareto_front(_points(), x="uar", y="deo_max")
    with pytest.raises(MetricError, match="two 1-D arrays"):
        pareto_mask([0.1, 0.2], [0.1])
