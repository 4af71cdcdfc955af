"""The speaker-bootstrap machinery behind :mod:`fairser.metrics.bootstrap`.

Inputs are turned once into per-speaker confusion matrices (:func:`prepare`); a resample is a
vector of speaker multiplicities drawn within each gender (:func:`draw`), and the per-group
matrices of all resamples are one matrix product (:func:`metric_table`), so every metric of a
resample comes from the same draw.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
)
from fairser.metrics._inputs import required_classes, resolve_labels

__all__ = [
    "FAIRNESS",
    "Prepared",
    "check_options",
    "draw",
    "full_counts",
    "metric_names",
    "metric_table",
    "percentiles",
    "prepare",
    "too_few",
]

FAIRNESS = ("dsp", "tpr_gap", "fpr_gap", "deo_max", "deo_sum")


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
    return ("uar", *(f"uar_{str(g).lower()}" for g in groups), *FAIRNESS)


@dataclass(frozen=True)
class Prepared:
    """Per-speaker confusion matrices of one or more prediction vectors."""

    counts: list[np.ndarray]  # per prediction input: (R, K, C, C), R runs (e.g. seeds)
    cluster_group: np.ndarray  # (K,) group index of each speaker
    groups: tuple
    pos: int | None
    n_classes: int
    labels: np.ndarray  # the classes, in index order
    required: np.ndarray  # (C,) classes UAR needs (see required_classes)


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


def prepare(
    y_true: Any,
    y_preds: Sequence[Any],
    *,
    sensitive_features: Any,
    speakers: Any,
    group_order: Sequence | None,
    labels: Sequence | None,
    pos_label: Any,
) -> Prepared:
    yt = as_1d(y_true, name="y_true")
    runs = [_runs(p, name="y_pred") for p in y_preds]
    flat = [r for rs in runs for r in rs]
    explicit = labels is not None
    if labels is None:
        cls, pos = resolve_labels(
            yt,
            np.concatenate(flat) if len(flat) > 1 else flat[0],
            labels=None,
            pos_label=pos_label,
        )
        labels = cls.tolist()
        required = required_classes(yt, cls, explicit=False, pos=pos)
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
    if explicit:
        required = enc.required
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
    return Prepared(
        counts=counts,
        cluster_group=first_group,
        groups=enc.groups,
        pos=enc.pos,
        n_classes=enc.n_classes,
        labels=enc.labels,
        required=required,
    )


def draw(prep: Prepared, *, n_boot: int, seed: int) -> np.ndarray:
    """Speaker multiplicities of each resample, shape (n_boot, K), float64."""
    rng = np.random.default_rng(seed)
    k = len(prep.cluster_group)
    weights = np.zeros((n_boot, k), dtype=np.float64)
    for g in range(len(prep.groups)):
        idx = np.flatnonzero(prep.cluster_group == g)
        if idx.size:
            weights[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), n_boot)
    return weights


def full_counts(prep: Prepared, run: int = 0, input_index: int = 0) -> np.ndarray:
    """Per-group confusion matrices of one run on the full data, shape (G, C, C)."""
    counts = prep.counts[input_index][run]
    out = np.zeros((len(prep.groups), prep.n_classes, prep.n_classes), dtype=np.int64)
    for g in range(len(prep.groups)):
        out[g] = counts[prep.cluster_group == g].sum(axis=0)
    return out


def _group_counts(prep: Prepared, counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-group confusion matrices of every run and weight row: (R, B, G, C, C)."""
    r, b, c = counts.shape[0], weights.shape[0], prep.n_classes
    flat = counts.reshape(r, counts.shape[1], c * c).astype(np.float64)
    out = np.zeros((r, b, len(prep.groups), c * c))
    for g in range(len(prep.groups)):
        idx = np.flatnonzero(prep.cluster_group == g)
        if idx.size:
            out[:, :, g] = np.einsum("bk,rkq->rbq", weights[:, idx], flat[:, idx])
    return out.reshape(r, b, len(prep.groups), c, c)


def metric_table(
    prep: Prepared, counts: np.ndarray, weights: np.ndarray, average: str
) -> pd.DataFrame:
    """Every metric per weight row, averaged over runs (runs where it is undefined skipped)."""
    m = core_metrics(
        _group_counts(prep, counts, weights),
        pos=prep.pos,
        average=average,
        required=prep.required,
    )
    cols = {"uar": nanmean(m["uar"], axis=0)}
    uar_g = nanmean(m["uar_g"], axis=0)
    for gi, g in enumerate(prep.groups):
        cols[f"uar_{str(g).lower()}"] = uar_g[:, gi]
    for name in FAIRNESS:
        cols[name] = nanmean(m[name], axis=0)
    return pd.DataFrame(cols)


def percentiles(samples: pd.DataFrame, confidence: float) -> tuple[dict, dict]:
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


def too_few(prep: Prepared, min_speakers: int) -> set[str]:
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


def check_options(n_boot: int, confidence: float, average: Any) -> None:
    check_average(average, allow_none=False)
    if not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise MetricError(f"n_boot={n_boot!r} must be an integer >= 0; e.g. 1000")
    if not 0.0 < confidence < 1.0:
        raise MetricError(f"confidence={confidence!r} must lie strictly between 0 and 1; e.g. 0.95")
