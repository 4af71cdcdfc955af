"""Speaker-level bootstrap confidence intervals and a paired bootstrap test.

Utterances of one speaker are not independent, so the resampling unit is the speaker: each
resample draws, within each gender separately, as many speakers as that gender has, with
replacement, and keeps all of their utterances. Every metric of a resample is recomputed from
the same draw, so the TPR and FPR gaps of equalized odds move together (the interval of dEO is
the interval of max(|dTPR|, |dFPR|) over resamples, not the larger of two intervals).

The computation is vectorised: confusion matrices are built once per speaker, a resample is a
vector of speaker multiplicities, and the per-group matrices of all resamples are one matrix
product, so 1000 resamples of 1000 utterances take milliseconds.

Two caveats the numbers carry. A gender with a single speaker gives no interval (NaN, see
``min_speakers``): every resample would repeat that speaker. And the gaps are absolute values,
which resampling pushes away from zero, so when a gap is near 0 its estimate can lie below the
lower percentile bound; read such an interval as "the gap is at most ``hi``".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairser.metrics._core import MetricError
from fairser.metrics._resample import (
    check_options,
    draw,
    metric_names,
    metric_table,
    percentiles,
    prepare,
    too_few,
)

__all__ = [
    "BootstrapResult",
    "metric_names",
    "paired_bootstrap_test",
    "speaker_bootstrap",
]


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimates and percentile confidence intervals from a speaker bootstrap.

    Attributes
    ----------
    estimate : dict of str to float
        Each metric on the full data (see :func:`metric_names`).
    lo, hi : dict of str to float
        Lower and upper percentile bounds; NaN when ``n_boot`` is 0 or no resample defines it.
    samples : pandas.DataFrame
        One row per resample, one column per metric (NaN where a resample leaves it undefined,
        e.g. a gender without positives); the bounds ignore those rows.
    confidence : float
        Coverage of the intervals, e.g. 0.95.
    seed : int
        Seed of the resampling.
    n_speakers : dict
        Number of speakers per group.
    """

    estimate: dict[str, float]
    lo: dict[str, float]
    hi: dict[str, float]
    samples: pd.DataFrame = field(repr=False)
    confidence: float
    seed: int
    n_speakers: dict

    @property
    def n_boot(self) -> int:
        """Number of resamples."""
        return len(self.samples)

    def to_dict(self) -> dict[str, float]:
        """Flat mapping ``{metric: estimate, metric_lo: lower, metric_hi: upper}``."""
        out: dict[str, float] = {}
        for name, value in self.estimate.items():
            out[name] = value
            out[f"{name}_lo"] = self.lo[name]
            out[f"{name}_hi"] = self.hi[name]
        return out

    def table(self) -> pd.DataFrame:
        """The estimates and bounds as a DataFrame indexed by metric."""
        return pd.DataFrame({"estimate": self.estimate, "lo": self.lo, "hi": self.hi}).rename_axis(
            "metric"
        )


def speaker_bootstrap(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    speakers: Any,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    group_order: Sequence | None = None,
    labels: Sequence | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
    min_speakers: int = 2,
) -> BootstrapResult:
    """Percentile confidence intervals for UAR, UAR per group, dSP and dEO by speaker resampling.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,) or (R, n)
        Predicted labels; a 2-D input holds R runs (e.g. seeds) on the same test set, and every
        metric is then the mean over runs, resampled with the same speakers for all runs.
    sensitive_features : array-like of shape (n,)
        Group (gender) of each row; every speaker must belong to one group.
    speakers : array-like of shape (n,)
        Speaker of each row: the resampling unit.
    n_boot : int, default 1000
        Number of resamples; 0 gives the estimates with NaN bounds.
    confidence : float, default 0.95
        Coverage of the percentile intervals.
    seed : int, default 0
        Seed of the resampling; the same seed gives the same intervals.
    group_order : sequence, optional
        Groups to report, in order (e.g. ``("M", "F")``); a group with no rows gives NaN.
        Default: the groups present, sorted.
    labels : sequence, optional
        The class list; default the union of ``y_true`` and ``y_pred``.
    pos_label : scalar, default 1
        Positive class of a binary task.
    average : {"macro", "max"}, default "macro"
        Multi-class only: how per-class fairness gaps are reduced.
    min_speakers : int, default 2
        A gender with rows but fewer speakers than this leaves the intervals of its own UAR,
        of the overall UAR and of every gap NaN: one speaker cannot show speaker-to-speaker
        variation, and a zero-width interval would claim false certainty.

    Returns
    -------
    BootstrapResult
        Estimates, bounds and the per-resample values of :func:`metric_names` ``(groups)``.

    Raises
    ------
    MetricError
        If lengths differ, a value is missing, a speaker spans two groups or an option is out
        of range.
    """
    check_options(n_boot, confidence, average)
    prep = prepare(
        y_true,
        [y_pred],
        sensitive_features=sensitive_features,
        speakers=speakers,
        group_order=group_order,
        labels=labels,
        pos_label=pos_label,
    )
    k = len(prep.cluster_group)
    estimate = metric_table(prep, prep.counts[0], np.ones((1, k)), average).iloc[0]
    samples = metric_table(prep, prep.counts[0], draw(prep, n_boot=n_boot, seed=seed), average)
    lo, hi = percentiles(samples, confidence)
    for name in too_few(prep, min_speakers):
        lo[name] = hi[name] = float("nan")
    n_speakers = {g: int(np.sum(prep.cluster_group == gi)) for gi, g in enumerate(prep.groups)}
    return BootstrapResult(
        estimate={c: float(v) for c, v in estimate.items()},
        lo=lo,
        hi=hi,
        samples=samples,
        confidence=confidence,
        seed=seed,
        n_speakers=n_speakers,
    )


def paired_bootstrap_test(
    y_true: Any,
    y_pred_a: Any,
    y_pred_b: Any,
    *,
    sensitive_features: Any,
    speakers: Any,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    group_order: Sequence | None = None,
    labels: Sequence | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
    min_speakers: int = 2,
) -> pd.DataFrame:
    """Paired speaker bootstrap test of the difference between two methods on one test set.

    Both prediction vectors are scored on the same speaker resamples, so the variation shared
    by the two (which speakers happen to be in the test set) cancels in the difference.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred_a, y_pred_b : array-like of shape (n,) or (R, n)
        Predictions of method A and method B for the same rows; 2-D inputs hold several runs
        (e.g. seeds) whose metrics are averaged, as in :func:`speaker_bootstrap`.
    sensitive_features : array-like of shape (n,)
        Group (gender) of each row.
    speakers : array-like of shape (n,)
        Speaker of each row: the resampling unit.
    metrics : sequence of str, optional
        Metrics to test, from :func:`metric_names`; default all of them.
    n_boot : int, default 1000
        Number of resamples (at least 1).
    confidence : float, default 0.95
        Coverage of the interval of the difference.
    seed : int, default 0
        Seed of the resampling.
    group_order, labels, pos_label, average, min_speakers
        As in :func:`speaker_bootstrap` (an undefined interval also makes the p-value NaN).

    Returns
    -------
    pandas.DataFrame
        Indexed by metric, columns ``a`` and ``b`` (estimates), ``difference`` (a - b), ``lo``
        and ``hi`` (percentile interval of the difference) and ``p_value``: the two-sided
        bootstrap p-value of "no difference", min(1, 2 min(P*(d <= 0), P*(d >= 0))) with the
        add-one correction (B+1 in the denominator). Identical predictions give a difference
        of 0 and a p-value of 1.
    """
    check_options(n_boot, confidence, average)
    if n_boot < 1:
        raise MetricError("n_boot=0 leaves nothing to test; pass n_boot >= 1, e.g. 1000")
    prep = prepare(
        y_true,
        [y_pred_a, y_pred_b],
        sensitive_features=sensitive_features,
        speakers=speakers,
        group_order=group_order,
        labels=labels,
        pos_label=pos_label,
    )
    names = list(metric_names(prep.groups))
    chosen = names if metrics is None else list(metrics)
    unknown = [m for m in chosen if m not in names]
    if unknown:
        raise MetricError(f"metrics: {unknown} are not among {names}; pick from those")
    k = len(prep.cluster_group)
    ones = np.ones((1, k))
    weights = draw(prep, n_boot=n_boot, seed=seed)
    est_a = metric_table(prep, prep.counts[0], ones, average).iloc[0]
    est_b = metric_table(prep, prep.counts[1], ones, average).iloc[0]
    diff = metric_table(prep, prep.counts[0], weights, average) - metric_table(
        prep, prep.counts[1], weights, average
    )
    lo, hi = percentiles(diff, confidence)
    undefined = too_few(prep, min_speakers)
    rows = []
    for name in chosen:
        d = diff[name].to_numpy()
        d = d[~np.isnan(d)]
        point = float(est_a[name] - est_b[name])
        if d.size == 0 or np.isnan(point) or name in undefined:
            p = lo[name] = hi[name] = float("nan")
        else:
            below = (1 + np.sum(d <= 0)) / (d.size + 1)
            above = (1 + np.sum(d >= 0)) / (d.size + 1)
            p = float(min(1.0, 2.0 * min(below, above)))
        rows.append(
            {
                "metric": name,
                "a": float(est_a[name]),
                "b": float(est_b[name]),
                "difference": point,
                "lo": lo[name],
                "hi": hi[name],
                "p_value": p,
            }
        )
    return pd.DataFrame(rows).set_index("metric")
