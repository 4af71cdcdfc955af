"""Is a measured gender gap about gender? A speaker-permutation test and a fair reference.

A gap such as dEO is measured on a finite test set whose speakers differ in more than gender.
Two references tell a reader how much of a measured gap the data alone would produce:

- **Speaker permutation.** The genders are dealt out again to the speakers (each speaker's
  utterances keep one group, each group keeps its number of speakers) and the gap is
  recomputed. If the real assignment's gap is typical of these reassignments, the gap says
  which speakers happen to be male, not something about gender. With few speakers every
  assignment is enumerated (4 speakers, 2 per gender: 6 assignments, so no p-value can fall
  below 1/6); otherwise ``n_resamples`` random ones are drawn.
- **Fair-classifier reference.** A classifier whose error rates are the same for every row of
  a class (each row's prediction drawn from the pooled confusion-matrix row of its true class:
  no group, no speaker differs) still shows a gap on finite data. Its distribution over
  ``n_resamples`` simulations (mean, ``fair_lo`` and ``fair_hi`` percentiles) is what such a
  classifier *typically* measures on these rows. It is not a lower bound: one fixed model can
  measure less by chance (``fair_lo``), and a goal below ``fair_mean`` is one that even this
  ideal classifier misses more often than not. ``fair_p`` is the share of simulations with a
  gap at least the observed one: a small ``fair_p`` says the model's error rates do differ
  between the groups' rows, by gender or by speaker; the permutation p-value says which.

:func:`gap_nulls` also pools the tasks of a method (``pool="emotion"``): a ``mean`` row whose
gap is the mean over the tasks, with the same reassignment applied to every task (when they
share their speakers) and independent fair simulations per task (seeded by each task's key),
so its percentiles are those of the mean, not a mean of percentiles. Both references use the
per-speaker confusion matrices of :mod:`fairser.metrics._resample`.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairser.metrics._core import MetricError, check_average, core_metrics, nanmean
from fairser.metrics._resample import FAIRNESS, Prepared, prepare
from fairser.metrics.compare import _runs_matrix, predictions_table

__all__ = ["NULL_COLUMNS", "gap_null", "gap_nulls"]

#: Columns of :func:`gap_null`'s table and their meaning.
NULL_COLUMNS: dict[str, str] = {
    "estimate": "the gap on the data as given",
    "permuted_mean": "mean gap over speaker reassignments of the groups",
    "permuted_hi": "upper percentile (`confidence`) of the gap over the reassignments",
    "p_value": "share of reassignments whose gap is at least the observed one (exact "
    "enumeration: the real assignment included; sampled: add-one corrected)",
    "fair_mean": "mean gap of a classifier with the same error rates for every row of a class "
    "(no group or speaker differs), on these rows: what such a classifier typically measures",
    "fair_lo": "lower percentile (1 - `confidence`) of that classifier's gap",
    "fair_hi": "upper percentile (`confidence`) of that classifier's gap",
    "fair_p": "share of that classifier's simulations with a gap at least the observed one "
    "(add-one corrected): small = the model's error rates differ between the groups' rows",
    "min_p": "the smallest p-value these speakers allow (exact: 1/n_assignments, 2/n for two "
    "genders of equal speaker counts, whose mirrored assignment gives the same gap)",
    "n_assignments": "number of speaker reassignments behind the permuted columns",
    "exact": "True when every reassignment was enumerated",
}


def _count_assignments(sizes: Sequence[int]) -> int:
    """Distinct ways to deal the speakers into groups of the given sizes (a multinomial)."""
    total, out = 0, 1
    for s in sizes:
        total += s
        out *= math.comb(total, s)
    return out


def _enumerate(k: int, sizes: Sequence[int]) -> Iterator[np.ndarray]:
    """Every assignment of k speakers to groups with the given sizes, as group codes."""

    def rec(free: tuple[int, ...], g: int) -> Iterator[dict[int, int]]:
        if g == len(sizes) - 1:
            yield dict.fromkeys(free, g)
            return
        for chosen in itertools.combinations(free, sizes[g]):
            rest = tuple(i for i in free if i not in set(chosen))
            for tail in rec(rest, g + 1):
                tail.update(dict.fromkeys(chosen, g))
                yield tail

    for mapping in rec(tuple(range(k)), 0):
        yield np.array([mapping[i] for i in range(k)], dtype=np.int64)


def _assignments(
    prep: Prepared, *, n_resamples: int, max_exact: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """Group code of each speaker per reassignment, shape (B, K); exact enumeration if small."""
    populated = [g for g in range(len(prep.groups)) if np.any(prep.cluster_group == g)]
    sizes = [int(np.sum(prep.cluster_group == g)) for g in populated]
    k = len(prep.cluster_group)
    if _count_assignments(sizes) <= max_exact:
        local = np.stack(list(_enumerate(k, sizes)))
        return np.asarray(populated, dtype=np.int64)[local], True
    out = np.empty((n_resamples, k), dtype=np.int64)
    for b in range(n_resamples):
        out[b] = rng.permutation(prep.cluster_group)
    return out, False


def _group_counts(counts: np.ndarray, assign: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group confusion matrices: (R, B, G, C, C).

    ``counts`` (R, K, C, C) with ``assign`` (B, K): each reassignment of the same counts;
    ``counts`` (R, B, K, C, C) with ``assign`` (K,): simulated counts, the real assignment.
    """
    member = np.eye(n_groups)[assign]
    if counts.ndim == 4:
        return np.einsum("bkg,rkij->rbgij", member, counts.astype(np.float64))
    return np.einsum("kg,rbkij->rbgij", member, counts.astype(np.float64))


def _fair_counts(counts: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Simulated per-speaker confusions of a group-blind classifier: (R, B, K, C, C)."""
    r, k, c, _ = counts.shape
    pooled = counts.sum(axis=1).astype(np.float64)  # (R, C, C)
    rows = pooled.sum(axis=-1, keepdims=True)
    pvals = np.divide(pooled, rows, out=np.full_like(pooled, 1.0 / c), where=rows > 0)
    n = counts.sum(axis=-1)  # (R, K, C) rows of each true class per speaker
    n = np.broadcast_to(n[:, None], (r, n_resamples, k, c))
    return rng.multinomial(n, pvals[:, None, None, :, :])


def gap_null(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    speakers: Any,
    n_resamples: int = 999,
    confidence: float = 0.95,
    seed: int = 0,
    max_exact: int = 10_000,
    group_order: Sequence | None = None,
    labels: Sequence | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
) -> pd.DataFrame:
    """How large the fairness gaps of these rows are against what the data alone produce.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_pred : array-like of shape (n,) or (R, n)
        Predicted labels; a 2-D input holds R runs (e.g. seeds) on the same rows, and every
        gap is the mean over runs (the same reassignment applied to every run).
    sensitive_features : array-like of shape (n,)
        Group (gender) of each row; every speaker must belong to one group.
    speakers : array-like of shape (n,)
        Speaker of each row: the unit that is reassigned.
    n_resamples : int, default 999
        Random reassignments when there are more than ``max_exact`` distinct ones, and
        simulations of the fair classifier (at least 1).
    confidence : float, default 0.95
        Percentile of the ``_hi`` columns.
    seed : int, default 0
        Seed of the sampling; the same seed gives the same table.
    max_exact : int, default 10000
        Enumerate every reassignment when there are at most this many.
    group_order, labels, pos_label, average
        As in :func:`fairser.metrics.speaker_bootstrap`.

    Returns
    -------
    pandas.DataFrame
        Indexed by metric (``dsp``, ``tpr_gap``, ``fpr_gap``, ``deo_max``, ``deo_sum``), with
        the columns of :data:`NULL_COLUMNS`. A metric undefined on the data (e.g. one group
        only) is NaN with a NaN p-value.

    Raises
    ------
    MetricError
        If lengths differ, a speaker spans two groups or an option is out of range.

    Examples
    --------
    >>> t = gap_null([1, 0, 1, 0, 1, 0, 1, 0], [1, 0, 0, 0, 1, 1, 1, 0],
    ...              sensitive_features=list("MMMMFFFF"), speakers=list("aabbccdd"))
    >>> int(t.loc["deo_max", "n_assignments"]), bool(t.loc["deo_max", "exact"])
    (6, True)
    """
    _check_options(n_resamples=n_resamples, max_exact=max_exact, confidence=confidence,
                   average=average)
    prep = prepare(
        y_true,
        [y_pred],
        sensitive_features=sensitive_features,
        speakers=speakers,
        group_order=group_order,
        labels=labels,
        pos_label=pos_label,
    )
    return _table(prep, n_resamples=n_resamples, confidence=confidence, seed=seed,
                  max_exact=max_exact, average=average)


def _check_options(*, n_resamples: Any, max_exact: Any, confidence: float, average: Any) -> None:
    check_average(average, allow_none=False)
    if not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise MetricError(f"n_resamples={n_resamples!r} must be an integer >= 1; e.g. 999")
    if not isinstance(max_exact, int | np.integer) or max_exact < 0:
        raise MetricError(f"max_exact={max_exact!r} must be an integer >= 0; e.g. 10000")
    if not 0.0 < confidence < 1.0:
        raise MetricError(f"confidence={confidence!r} must lie strictly between 0 and 1; e.g. 0.95")


@dataclass(frozen=True)
class _Samples:
    """Observed gaps and their reference distributions, per metric of :data:`FAIRNESS`."""

    observed: dict[str, float]
    permuted: dict[str, np.ndarray]  # (B,) one per reassignment, in a fixed order
    fair: dict[str, np.ndarray]  # (S,) one per fair-classifier simulation
    exact: bool
    min_p: float
    speakers: tuple  # (speaker, group) pairs: reassignments align only between equal ones


def _samples(prep: Prepared, *, n_resamples: int, seed: int, fair_seed: Sequence[int],
             max_exact: int, average: str, speakers: Sequence[str] = ()) -> _Samples:
    """The gaps of ``prep`` under the real assignment, every reassignment and the fair model."""
    counts = prep.counts[0]  # (R, K, C, C)
    n_groups = len(prep.groups)

    def gaps(group_counts: np.ndarray) -> dict[str, np.ndarray]:
        m = core_metrics(group_counts, pos=prep.pos, average=average, required=prep.required)
        return {name: nanmean(m[name], axis=0) for name in FAIRNESS}  # mean over runs

    observed = gaps(_group_counts(counts, prep.cluster_group[None, :], n_groups))
    assign, exact = _assignments(prep, n_resamples=n_resamples, max_exact=max_exact,
                                 rng=np.random.default_rng(seed))
    simulated = _fair_counts(counts, n_resamples, np.random.default_rng([seed, *fair_seed]))
    sizes = sorted(int(np.sum(prep.cluster_group == g)) for g in range(n_groups))
    sizes = [n for n in sizes if n]
    mirrored = len(sizes) == 2 and sizes[0] == sizes[1]
    return _Samples(
        observed={name: float(v[0]) for name, v in observed.items()},
        permuted=gaps(_group_counts(counts, assign, n_groups)),
        fair=gaps(_group_counts(simulated, prep.cluster_group, n_groups)),
        exact=exact,
        min_p=((2 if mirrored else 1) / len(assign)) if exact else 1 / (len(assign) + 1),
        speakers=tuple(zip(speakers, prep.cluster_group.tolist(), strict=False)),
    )


def _row(obs: float, perm: np.ndarray, sim: np.ndarray, *, exact: bool, min_p: float,
         confidence: float) -> dict[str, Any]:
    """One row of :data:`NULL_COLUMNS` from an observed gap and its two references."""
    n_assign = len(perm)
    perm, sim = perm[~np.isnan(perm)], sim[~np.isnan(sim)]
    if math.isnan(obs) or perm.size == 0:
        p = float("nan")
    elif exact:
        p = float(np.mean(perm >= obs - 1e-12))
    else:
        p = float((1 + np.sum(perm >= obs - 1e-12)) / (perm.size + 1))
    q = 100.0 * confidence
    nan = float("nan")
    return {
        "estimate": obs,
        "permuted_mean": float(perm.mean()) if perm.size else nan,
        "permuted_hi": float(np.percentile(perm, q)) if perm.size else nan,
        "p_value": p,
        "fair_mean": float(sim.mean()) if sim.size else nan,
        "fair_lo": float(np.percentile(sim, 100.0 - q)) if sim.size else nan,
        "fair_hi": float(np.percentile(sim, q)) if sim.size else nan,
        "fair_p": (float((1 + np.sum(sim >= obs - 1e-12)) / (sim.size + 1))
                   if sim.size and not math.isnan(obs) else nan),
        "min_p": float(min_p),
        "n_assignments": int(n_assign),
        "exact": bool(exact),
    }


def _table(prep: Prepared, *, n_resamples: int, confidence: float, seed: int, max_exact: int,
           average: str) -> pd.DataFrame:
    """The :func:`gap_null` table of prepared inputs."""
    got = _samples(prep, n_resamples=n_resamples, seed=seed, fair_seed=(0,),
                   max_exact=max_exact, average=average)
    rows = [{"metric": name, **_row(got.observed[name], got.permuted[name], got.fair[name],
                                    exact=got.exact, min_p=got.min_p, confidence=confidence)}
            for name in FAIRNESS]
    return pd.DataFrame(rows).set_index("metric")


def _pooled(parts: list[_Samples], metric: str, *, confidence: float) -> dict[str, Any]:
    """The row of the mean over tasks: reassignments aligned when the tasks share speakers."""
    obs = float(np.mean([p.observed[metric] for p in parts]))
    fair = np.mean([p.fair[metric] for p in parts], axis=0)  # independent draws per task
    first = parts[0]
    aligned = all(p.speakers == first.speakers and p.exact == first.exact
                  and len(p.permuted[metric]) == len(first.permuted[metric]) for p in parts)
    perm = (np.mean([p.permuted[metric] for p in parts], axis=0) if aligned
            else np.full(len(first.permuted[metric]), np.nan))
    return _row(obs, perm, fair, exact=first.exact, min_p=first.min_p, confidence=confidence)


def gap_nulls(
    predictions: pd.DataFrame,
    *,
    by: Sequence[str] | None = None,
    metrics: Sequence[str] = ("dsp", "deo_max"),
    n_resamples: int = 999,
    confidence: float = 0.95,
    seed: int = 0,
    max_exact: int = 10_000,
    group_order: Sequence = ("M", "F"),
    labels: Sequence | None = None,
    pos_label: Any = 1,
    average: Literal["macro", "max"] = "macro",
    pool: str | None = "emotion",
) -> pd.DataFrame:
    """:func:`gap_null` of every method (and sweep point) in a table of stored predictions.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per (run, utterance), columns
        :data:`fairser.metrics.PREDICTION_COLUMNS` plus ``seed`` (optional: runs averaged),
        ``sweep`` (optional) and the ``by`` columns.
    by : sequence of str, optional
        Grouping columns; default those of ``condition``, ``target``, ``corpus``, ``role`` and
        ``emotion`` present.
    metrics : sequence of str, default ("dsp", "deo_max")
        Gaps to report, from ``dsp``, ``tpr_gap``, ``fpr_gap``, ``deo_max``, ``deo_sum``.
    n_resamples, confidence, seed, max_exact, group_order, labels, pos_label, average
        As in :func:`gap_null`; ``group_order`` fixes the genders.
    pool : str or None, default "emotion"
        A ``by`` column whose values are pooled: each method then also gets rows with
        ``mean`` in that column, the gap averaged over its values (e.g. the mean over the
        binary tasks, as goals are stated), with the percentiles and p-values *of that mean*
        (see the module docstring; permuted columns NaN when the tasks' speakers differ).
        None, or a column with a single value, adds nothing.

    Returns
    -------
    pandas.DataFrame
        One row per group, method, sweep point and metric: the ``by`` columns, ``method``,
        ``sweep``, ``metric``, the columns of :data:`NULL_COLUMNS` and ``runs`` (seeds
        averaged); then the pooled rows.

    Raises
    ------
    MetricError
        If a column is missing, a metric is unknown, or a run lacks some of its method's
        utterances.
    """
    _check_options(n_resamples=n_resamples, max_exact=max_exact, confidence=confidence,
                   average=average)
    df, keys = predictions_table(predictions, by)
    unknown = [m for m in metrics if m not in FAIRNESS]
    if unknown:
        raise MetricError(f"metrics: {unknown} are not among {list(FAIRNESS)}; pick from those")
    if pool is not None and pool not in keys:
        raise MetricError(f"pool={pool!r} is not a grouping column ({keys}); pass one of "
                          "them or None")
    out, kept = [], []
    for key, part in df.groupby([*keys, "method", "sweep"], sort=False):
        values = dict(zip([*keys, "method", "sweep"], key, strict=True))
        what = ", ".join(f"{k}={v}" for k, v in values.items())
        first = part.drop_duplicates("utt_id").set_index("utt_id")
        runs, n_runs = _runs_matrix(part, first.index, what=what)
        prep = prepare(first["y_true"].to_numpy(), [runs],
                       sensitive_features=first["gender"].to_numpy(),
                       speakers=first["speaker"].to_numpy(), group_order=list(group_order),
                       labels=labels, pos_label=pos_label)
        # fair draws seeded by the group's key: independent per task, whatever else is passed
        got = _samples(prep, n_resamples=n_resamples, seed=seed,
                       fair_seed=(zlib.crc32(repr(key).encode()),), max_exact=max_exact,
                       average=average,
                       speakers=sorted(np.unique(first["speaker"].astype(str)).tolist()))
        kept.append((values, got, n_runs))
        for metric in metrics:
            out.append({**values, "metric": metric, "runs": n_runs,
                        **_row(got.observed[metric], got.permuted[metric], got.fair[metric],
                               exact=got.exact, min_p=got.min_p, confidence=confidence)})
    if pool is not None:
        rest = [k for k in [*keys, "method", "sweep"] if k != pool]
        sets: dict[tuple, list[tuple[dict, _Samples, int]]] = {}
        for values, got, n_runs in kept:
            sets.setdefault(tuple(values[k] for k in rest), []).append((values, got, n_runs))
        for members in sets.values():
            if len(members) < 2:
                continue
            base = {**members[0][0], pool: "mean"}
            parts = [got for _, got, _ in members]
            for metric in metrics:
                out.append({**base, "metric": metric, "runs": min(n for *_, n in members),
                            **_pooled(parts, metric, confidence=confidence)})
    columns = [*keys, "method", "sweep", "metric", *NULL_COLUMNS, "runs"]
    return pd.DataFrame(out, columns=columns)
