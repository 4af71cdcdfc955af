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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairser.metrics._core import (
    MetricError,
    as_1d,
    check_average,
    confusion_by_cluster,
    core_metrics,
    encode,
    nanmean,
    resolve_labels,
)

__all__ = [
    "BootstrapResult",
    "metric_names",
    "paired_bootstrap_test",
    "speaker_bootstrap",
]

_FAIRNESS = ("dsp", "tpr_gap", "fpr_gap", "deo_max", "deo_sum")


def metric_names(groups: Sequence) -> tuple[str, ...]:
    """Names of the bootstrapped metrics for the given groups, in order.

    Parameters
    ----------
    groups : sequence
        The groups, e.g. ``("F", "M")``.

    Returns
    -------
    tuple of str
        ``uar``, then ``uar_<group>`` for each group (lower-cased, e.g. ``uar_f``, ``uar_m``),
        then ``dsp``, ``tpr_gap``, ``fpr_gap``, ``deo_max``, ``deo_sum``.
    """
    return ("uar", *(f"uar_{str(g).lower()}" for g in groups), *_FAIRNESS)


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


@dataclass(frozen=True)
class _Prepared:
    """Per-speaker confusion matrices of one or more prediction vectors."""

    counts: list[np.ndarray]  # per prediction input: (R, K, C, C), R runs (e.g. seeds)
    cluster_group: np.ndarray  # (K,) group index of each speaker
    groups: tuple
    pos: int | None
    n_classes: int


def _runs(values: Any, *, name: str) -> list[np.ndarray]:
    """Split predictions into runs: a 1-D input is one run, a 2-D (R, n) input R runs."""
    if not isinstance(values, pd.Series | pd.Index | pd.DataFrame):
        try:
            array = np.asarray(values)
        except ValueError as exc:  # ragged nested lists
            raise MetricError(
                f"{name}: runs of different lengths ({exc.__class__.__name__}); pass one "
                "prediction per test row in every run"
            ) from exc
        if array.ndim == 2:
            if array.shape[0] == 0:
                raise MetricError(f"{name}: 2-D input with no runs; pass shape (R, n), R >= 1")
            return [as_1d(row, name=f"{name}[{r}]") for r, row in enumerate(array)]
    return [as_1d(values, name=name)]


def _prepare(
    y_true: Any,
    y_preds: Sequence[Any],
    *,
    sensitive_features: Any,
    speakers: Any,
    group_order: Sequence | None,
    labels: Sequence | None,
    pos_label: Any,
) -> _Prepared:
    yt = as_1d(y_true, name="y_true")
    runs = [_runs(p, name="y_pred") for p in y_preds]
    flat = [r for rs in runs for r in rs]
    if labels is None:
        cls, _ = resolve_labels(
            yt,
            np.concatenate(flat) if len(flat) > 1 else flat[0],
            labels=None,
            pos_label=pos_label,
        )
        labels = cls.tolist()
    encs = [
        [
            encode(
                yt,
                p,
                sensitive_features=sensitive_features,
                labels=labels,
                pos_label=pos_label,
                group_order=group_order,
            )
            for p in rs
        ]
        for rs in runs
    ]
    spk = as_1d(speakers, name="speakers")
    if len(spk) != len(yt):
        raise MetricError(
            f"speakers has {len(spk)} rows but y_true has {len(yt)}; pass one speaker per row"
        )
    enc = encs[0][0]
    spk_codes, spk_index = np.unique(spk.astype(str), return_inverse=True)
    _, first_row = np.unique(spk_index, return_index=True)
    first_group = enc.group[first_row]
    clash = np.flatnonzero(first_group[spk_index] != enc.group)
    if clash.size:
        row = int(clash[0])
        name = str(spk_codes[spk_index[row]])
        raise MetricError(
            f"speakers: speaker {name!r} has rows in more than one group (row {row} is "
            f"{enc.groups[enc.group[row]]!r}); fix its gender labels or make speaker ids unique"
        )
    counts = [
        np.stack(
            [
                confusion_by_cluster(
                    spk_index, e.y_true, e.y_pred, n_clusters=len(spk_codes), n_classes=e.n_classes
                )
                for e in es
            ]
        )
        for es in encs
    ]
    return _Prepared(
        counts=counts,
        cluster_group=first_group,
        groups=enc.groups,
        pos=enc.pos,
        n_classes=enc.n_classes,
    )


def _draw(prep: _Prepared, *, n_boot: int, seed: int) -> np.ndarray:
    """Speaker multiplicities of each resample, shape (n_boot, K), float64."""
    rng = np.random.default_rng(seed)
    k = len(prep.cluster_group)
    weights = np.zeros((n_boot, k), dtype=np.float64)
    for g in range(len(prep.groups)):
        idx = np.flatnonzero(prep.cluster_group == g)
        if idx.size:
            weights[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), n_boot)
    return weights


def _group_counts(prep: _Prepared, counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-group confusion matrices of every run and weight row: (R, B, G, C, C)."""
    r, b, c = counts.shape[0], weights.shape[0], prep.n_classes
    flat = counts.reshape(r, counts.shape[1], c * c).astype(np.float64)
    out = np.zeros((r, b, len(prep.groups), c * c))
    for g in range(len(prep.groups)):
        idx = np.flatnonzero(prep.cluster_group == g)
        if idx.size:
            out[:, :, g] = np.einsum("bk,rkq->rbq", weights[:, idx], flat[:, idx])
    return out.reshape(r, b, len(prep.groups), c, c)


def _metric_table(
    prep: _Prepared, counts: np.ndarray, weights: np.ndarray, average: str
) -> pd.DataFrame:
    """Every metric per weight row, averaged over runs (runs where it is undefined skipped)."""
    m = core_metrics(_group_counts(prep, counts, weights), pos=prep.pos, average=average)
    cols = {"uar": nanmean(m["uar"], axis=0)}
    uar_g = nanmean(m["uar_g"], axis=0)
    for gi, g in enumerate(prep.groups):
        cols[f"uar_{str(g).lower()}"] = uar_g[:, gi]
    for name in _FAIRNESS:
        cols[name] = nanmean(m[name], axis=0)
    return pd.DataFrame(cols)


def _percentiles(samples: pd.DataFrame, confidence: float) -> tuple[dict, dict]:
    if len(samples) == 0:
        nan = dict.fromkeys(samples.columns, float("nan"))
        return nan, dict(nan)
    q = [50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bounds = np.nanpercentile(samples.to_numpy(), q, axis=0)
    lo = {c: float(v) for c, v in zip(samples.columns, bounds[0], strict=True)}
    hi = {c: float(v) for c, v in zip(samples.columns, bounds[1], strict=True)}
    return lo, hi


def _too_few(prep: _Prepared, min_speakers: int) -> set[str]:
    """Metrics whose interval is undefined because a populated group has too few speakers.

    One speaker cannot show speaker-to-speaker variation: every resample repeats it, and the
    interval would collapse to a point that claims false certainty.
    """
    few = [
        g
        for gi, g in enumerate(prep.groups)
        if 0 < int(np.sum(prep.cluster_group == gi)) < min_speakers
    ]
    if min_speakers < 1:
        raise MetricError(f"min_speakers={min_speakers} must be >= 1; e.g. 2")
    if not few:
        return set()
    names = set(metric_names(prep.groups))
    own = {f"uar_{str(g).lower()}" for g in prep.groups}
    return (names - own) | {f"uar_{str(g).lower()}" for g in few}


def _check_options(n_boot: int, confidence: float, average: Any) -> None:
    check_average(average, allow_none=False)
    if not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise MetricError(f"n_boot={n_boot!r} must be an integer >= 0; e.g. 1000")
    if not 0.0 < confidence < 1.0:
        raise MetricError(f"confidence={confidence!r} must lie strictly between 0 and 1; e.g. 0.95")


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
    _check_options(n_boot, confidence, average)
    prep = _prepare(
        y_true,
        [y_pred],
        sensitive_features=sensitive_features,
        speakers=speakers,
        group_order=group_order,
        labels=labels,
        pos_label=pos_label,
    )
    k = len(prep.cluster_group)
    estimate = _metric_table(prep, prep.counts[0], np.ones((1, k)), average).iloc[0]
    samples = _metric_table(prep, prep.counts[0], _draw(prep, n_boot=n_boot, seed=seed), average)
    lo, hi = _percentiles(samples, confidence)
    for name in _too_few(prep, min_speakers):
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
    _check_options(n_boot, confidence, average)
    if n_boot < 1:
        raise MetricError("n_boot=0 leaves nothing to test; pass n_boot >= 1, e.g. 1000")
    prep = _prepare(
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
    weights = _draw(prep, n_boot=n_boot, seed=seed)
    est_a = _metric_table(prep, prep.counts[0], ones, average).iloc[0]
    est_b = _metric_table(prep, prep.counts[1], ones, average).iloc[0]
    diff = _metric_table(prep, prep.counts[0], weights, average) - _metric_table(
        prep, prep.counts[1], weights, average
    )
    lo, hi = _percentiles(diff, confidence)
    undefined = _too_few(prep, min_speakers)
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
