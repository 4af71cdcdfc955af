"""PNG figures of a results table (matplotlib, Agg canvas, no pyplot state, no network).

Every function writes one PNG atomically and returns its path. Figures average what they do not
show: over seeds always, and over emotions where the x axis is the method. Error bars are the
standard deviation over seeds when there are several, else the mean of the runs' speaker-
bootstrap interval bounds.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from fairser.report._results import (
    ReportError,
    aggregate,
    atomic_write_bytes,
    block_title,
    method_label,
    method_rank,
    ordered_blocks,
    read_results,
)

__all__ = [
    "has_sweep",
    "pareto_front",
    "plot_embeddings",
    "plot_fairness_gap",
    "plot_fairness_vs_uar",
    "plot_pareto",
    "plot_recall_by_gender",
]

_LABELS = {
    "uar": "UAR (higher is better)",
    "dsp": "dSP = |ΔP(ŷ=1)| (lower is fairer)",
    "deo_max": "dEO = max(|ΔTPR|, |ΔFPR|) (lower is fairer)",
    "deo_sum": "dEO = |ΔTPR| + |ΔFPR| (lower is fairer)",
    "tpr_gap": "|ΔTPR| (lower is fairer)",
    "fpr_gap": "|ΔFPR| (lower is fairer)",
}
_SHORT = {
    "dsp": "dSP",
    "deo_max": "dEO",
    "deo_sum": "dEO(sum)",
    "tpr_gap": "dTPR",
    "fpr_gap": "dFPR",
    "uar": "UAR",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_GENDER_COLORS = {"M": "#3b6fb6", "F": "#d1495b"}
_DPI = 110


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return atomic_write_bytes(Path(path), buf.getvalue())


def _method_colors(methods: Sequence[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["tab10"]
    ranks = method_rank(methods)
    return {m: cmap(ranks[m] % 10) for m in ranks}


def _err(agg: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2, n): sd over seeds if defined, else the interval, else 0."""
    mean = agg[metric].to_numpy(float)
    sd = agg[f"{metric}_sd"].to_numpy(float)
    lo = agg[f"{metric}_lo"].to_numpy(float)
    hi = agg[f"{metric}_hi"].to_numpy(float)
    low = np.where(np.isfinite(sd), sd, np.where(np.isfinite(lo), mean - lo, 0.0))
    high = np.where(np.isfinite(sd), sd, np.where(np.isfinite(hi), hi - mean, 0.0))
    return np.clip(np.vstack([low, high]), 0.0, None)


def _error_bars(
    ax: Any, x: np.ndarray, y: np.ndarray, xerr: np.ndarray, yerr: np.ndarray, colors: Sequence[Any]
) -> None:
    """Draw all horizontal and vertical error bars of a scatter as one LineCollection."""
    segments, seg_colors = [], []
    for i in range(len(x)):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        segments.append([(x[i] - xerr[0, i], y[i]), (x[i] + xerr[1, i], y[i])])
        segments.append([(x[i], y[i] - yerr[0, i]), (x[i], y[i] + yerr[1, i])])
        seg_colors += [colors[i], colors[i]]
    if segments:
        ax.add_collection(LineCollection(segments, colors=seg_colors, linewidths=0.8, alpha=0.7))
        ax.autoscale_view()


def _over_emotions(part: pd.DataFrame, keys: list[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean over emotions within each seed, then :func:`aggregate` over seeds."""
    cols = [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi") if c in part.columns]
    numeric = part[keys + ["seed"]].copy()
    for c in cols:
        numeric[c] = pd.to_numeric(part[c], errors="coerce")
    per_seed = numeric.groupby(keys + ["seed"], sort=False, dropna=False).mean().reset_index()
    return aggregate(per_seed, by=keys, metrics=metrics)


def _sorted_keys(agg: pd.DataFrame, ranks: dict[str, int], sweeps: dict[str, int]) -> pd.DataFrame:
    order = [(ranks[m], sweeps.get(s, 0)) for m, s in zip(agg["method"], agg["sweep"], strict=True)]
    return agg.iloc[sorted(range(len(agg)), key=order.__getitem__)].reset_index(drop=True)


def plot_fairness_vs_uar(
    results: pd.DataFrame | str | os.PathLike,
    path: str | os.PathLike,
    *,
    fairness: Sequence[str] = ("dsp", "deo_max"),
) -> Path:
    """Scatter of fairness gap (x) against UAR (y): one point per method and emotion.

    Colour is the method, marker the emotion; a row of panels per corpus block, a column per
    fairness metric. The best corner is the top left (accurate and fair).

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table with ``uar`` and the ``fairness`` columns.
    path : path
        PNG to write.
    fairness : sequence of str, default ("dsp", "deo_max")
        Gap metrics on the x axes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    df = read_results(results, need=["uar", *fairness])
    blocks = ordered_blocks(df)
    colors = _method_colors(df["method"])
    emotions = list(dict.fromkeys(df["emotion"]))
    markers = {e: _MARKERS[i % len(_MARKERS)] for i, e in enumerate(emotions)}
    fig = Figure(figsize=(5.2 * len(fairness) + 2.2, 3.9 * len(blocks)), layout="constrained")
    axes = fig.subplots(len(blocks), len(fairness), squeeze=False)
    for r, (values, part) in enumerate(blocks):
        agg = aggregate(part, by=["method", "sweep", "emotion"], metrics=["uar", *fairness])
        point_colors = [colors[m] for m in agg["method"]]
        hollow = agg["sweep"].to_numpy(dtype=str) != ""
        for c, metric in enumerate(fairness):
            ax = axes[r][c]
            _error_bars(
                ax,
                agg[metric].to_numpy(float),
                agg["uar"].to_numpy(float),
                _err(agg, metric),
                _err(agg, "uar"),
                point_colors,
            )
            for emotion in dict.fromkeys(agg["emotion"]):
                sel = (agg["emotion"] == emotion).to_numpy()
                face = [
                    "none" if h else col
                    for h, col, k in zip(hollow, point_colors, sel, strict=True)
                    if k
                ]
                ax.scatter(
                    agg[metric][sel],
                    agg["uar"][sel],
                    marker=markers[emotion],
                    s=48,
                    facecolors=face,
                    edgecolors=[col for col, k in zip(point_colors, sel, strict=True) if k],
                    linewidths=0.9,
                    zorder=3,
                )
            ax.set_xlabel(_LABELS.get(metric, metric))
            ax.set_ylabel(_LABELS["uar"])
            ax.set_title(block_title(values), fontsize=10)
            ax.grid(alpha=0.3)
            ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    handles = [
        Line2D([], [], color=colors[m], marker="o", ls="", ms=7, label=method_label(m))
        for m in colors
    ]
    handles += [
        Line2D([], [], color="grey", marker=markers[e], ls="", ms=7, label=e) for e in emotions
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="method / emotion")
    fig.suptitle("Fairness against accuracy (error bars: seed sd or bootstrap interval)")
    return _save(fig, path)


def plot_recall_by_gender(
    results: pd.DataFrame | str | os.PathLike, path: str | os.PathLike
) -> Path:
    """Grouped bars of UAR within male and within female speakers, per method and corpus block.

    Bars average over emotions and seeds; error bars are the sd over seeds (or the interval).

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table with ``uar_m`` and ``uar_f``.
    path : path
        PNG to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    df = read_results(results, need=["uar_m", "uar_f"])
    blocks = ordered_blocks(df)
    ranks = method_rank(df["method"])
    ncols = min(2, len(blocks))
    nrows = int(np.ceil(len(blocks) / ncols))
    fig = Figure(figsize=(6.5 * ncols, 3.8 * nrows), layout="constrained")
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (values, part) in zip(axes, blocks, strict=False):
        sweeps = {s: i for i, s in enumerate(dict.fromkeys(part["sweep"]))}
        agg = _sorted_keys(
            _over_emotions(part, ["method", "sweep"], ["uar_m", "uar_f"]), ranks, sweeps
        )
        x = np.arange(len(agg))
        for offset, g in ((-0.2, "M"), (0.2, "F")):
            m = f"uar_{g.lower()}"
            ax.bar(
                x + offset,
                agg[m],
                width=0.4,
                color=_GENDER_COLORS[g],
                label=g,
                yerr=_err(agg, m),
                capsize=2,
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(
            x,
            [method_label(m, s) for m, s in zip(agg["method"], agg["sweep"], strict=True)],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        ax.set_ylabel("UAR within gender")
        ax.set_ylim(0, 1)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(block_title(values), fontsize=10)
        ax.legend(fontsize=8, loc="upper right", ncols=2)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(blocks) :]:
        ax.set_visible(False)
    fig.suptitle("Recall per gender (mean over emotions and seeds)")
    return _save(fig, path)


def plot_fairness_gap(
    results: pd.DataFrame | str | os.PathLike,
    path: str | os.PathLike,
    *,
    fairness: Sequence[str] = ("dsp", "deo_max"),
) -> Path:
    """Source against target fairness per method: the gap the paper is about.

    For every method a circle marks the gap on the source test set and a square the gap on the
    target corpus, joined by a line; a method fair on the source can be unfair on the target.
    One row of panels per target corpus (and condition), one column per fairness metric.

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table with ``role`` values ``source`` and ``target``.
    path : path
        PNG to write.
    fairness : sequence of str, default ("dsp", "deo_max")
        Gap metrics shown.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ReportError
        If the results lack source or target rows.
    """
    df = read_results(results, need=list(fairness))
    roles = set(df["role"])
    if not {"source", "target"} <= roles:
        raise ReportError(
            f"results: roles {sorted(roles)}; the source-vs-target plot needs rows of both "
            "'source' and 'target'"
        )
    ranks = method_rank(df["method"])
    group_cols = ["target", "condition"]
    groups = list(df.groupby(group_cols, sort=False))
    several_conditions = df["condition"].nunique() > 1
    fig = Figure(figsize=(6.0 * len(fairness), 3.8 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), len(fairness), squeeze=False)
    for r, ((target, condition), part) in enumerate(groups):
        sweeps = {s: i for i, s in enumerate(dict.fromkeys(part["sweep"]))}
        src = part[part["role"] == "source"]
        tgt = part[part["role"] == "target"]
        a = _over_emotions(src, ["method", "sweep"], fairness)
        b = _over_emotions(tgt, ["method", "sweep"], fairness)
        both = _sorted_keys(a.merge(b[["method", "sweep"]], on=["method", "sweep"]), ranks, sweeps)
        a = both[["method", "sweep"]].merge(a, on=["method", "sweep"], how="left")
        b = both[["method", "sweep"]].merge(b, on=["method", "sweep"], how="left")
        x = np.arange(len(both))
        src_name = ", ".join(dict.fromkeys(src["corpus"]))
        tgt_name = ", ".join(dict.fromkeys(tgt["corpus"])) or target
        for c, metric in enumerate(fairness):
            ax = axes[r][c]
            for i in x:
                ax.plot([i - 0.12, i + 0.12], [a[metric][i], b[metric][i]], color="grey", lw=1)
            ax.errorbar(
                x - 0.12,
                a[metric],
                yerr=_err(a, metric),
                fmt="o",
                color="#4c956c",
                capsize=2,
                label="source test set",
            )
            ax.errorbar(
                x + 0.12,
                b[metric],
                yerr=_err(b, metric),
                fmt="s",
                color="#f4a259",
                mec="black",
                mew=0.5,
                capsize=2,
                label="target corpus",
            )
            ax.set_xticks(
                x,
                [method_label(m, s) for m, s in zip(both["method"], both["sweep"], strict=True)],
                rotation=30,
                ha="right",
                fontsize=8,
            )
            ax.set_ylabel(_LABELS.get(metric, metric))
            ax.set_ylim(bottom=0)
            title = f"{_SHORT.get(metric, metric)}: {src_name} → {tgt_name}"
            if several_conditions:
                title += f" ({condition})"
            ax.set_title(title, fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle("Fair on the source is not fair on the target (mean over emotions and seeds)")
    return _save(fig, path)


def _embedding_arrays(
    name: str, item: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [k for k in ("embeddings", "gender", "corpus") if k not in item]
    if missing:
        raise ReportError(
            f"embeddings[{name!r}]: missing key(s) {missing}; pass a mapping with 'embeddings' "
            "(n, E), 'gender' (n,) and 'corpus' (n,)"
        )
    x = np.asarray(item["embeddings"], dtype=np.float64)
    gender = np.asarray(item["gender"]).astype(str)
    corpus = np.asarray(item["corpus"]).astype(str)
    if x.ndim != 2 or not len(x) == len(gender) == len(corpus):
        raise ReportError(
            f"embeddings[{name!r}]: shapes {x.shape}, {gender.shape}, {corpus.shape} disagree; "
            "pass (n, E) embeddings with n genders and n corpus names"
        )
    if len(x) < 3:
        raise ReportError(f"embeddings[{name!r}]: {len(x)} rows; a projection needs at least 3")
    keep = np.isfinite(x).all(axis=1)
    return x[keep], gender[keep], corpus[keep]


def plot_embeddings(
    embeddings: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    max_points: int = 1500,
    max_sets: int = 8,
    seed: int = 0,
    threads: int | None = 1,
) -> Path:
    """2-D PCA projection of embeddings, coloured by gender (left) and by corpus (right).

    Parameters
    ----------
    embeddings : mapping of str to mapping
        Title (e.g. the method) to ``{"embeddings": (n, E), "gender": (n,), "corpus": (n,)}``;
        other keys are ignored. One row of panels per entry.
    path : path
        PNG to write.
    max_points : int, default 1500
        Rows drawn per entry (a seeded random subset when there are more).
    max_sets : int, default 8
        Entries drawn at most (the first ones).
    seed : int, default 0
        Seed of the subset.
    threads : int or None, default 1
        BLAS threads for the PCA (restored afterwards); None leaves the current setting.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    items = list(embeddings.items())[:max_sets]
    if not items:
        raise ReportError("embeddings: empty mapping; pass at least one set of embeddings")
    per_row = 1 if len(items) == 1 else 2  # one or two (gender, corpus) pairs per row
    nrows = int(np.ceil(len(items) / per_row))
    fig = Figure(figsize=(5.2 * 2 * per_row, 3.9 * nrows), layout="constrained")
    grid = fig.subplots(nrows, 2 * per_row, squeeze=False)
    for ax in grid.ravel()[2 * len(items) :]:
        ax.set_visible(False)
    corpora = list(
        dict.fromkeys(c for _, it in items for c in np.asarray(it.get("corpus", [])).astype(str))
    )
    cmap = matplotlib.colormaps["Dark2"]
    corpus_colors = {c: cmap(i % 8) for i, c in enumerate(corpora)}
    rng = np.random.default_rng(seed)
    for r, (name, item) in enumerate(items):
        x, gender, corpus = _embedding_arrays(name, item)
        if len(x) > max_points:
            take = np.sort(rng.choice(len(x), max_points, replace=False))
            x, gender, corpus = x[take], gender[take], corpus[take]
        if x.shape[1] == 1:
            x = np.hstack([x, np.zeros_like(x)])
        pca = PCA(n_components=2, random_state=seed)
        with threadpool_limits(limits=threads):
            xy = pca.fit_transform(x)
        var = pca.explained_variance_ratio_
        for c, (values, palette, what) in enumerate(
            [(gender, _GENDER_COLORS, "gender"), (corpus, corpus_colors, "corpus")]
        ):
            ax = grid[r // per_row][2 * (r % per_row) + c]
            for v in dict.fromkeys(values):
                sel = values == v
                ax.scatter(
                    xy[sel, 0],
                    xy[sel, 1],
                    s=9,
                    alpha=0.6,
                    label=f"{v} ({sel.sum()})",
                    color=palette.get(v, "#888888"),
                    linewidths=0,
                )
            ax.set_title(f"{name}: coloured by {what}", fontsize=10)
            ax.set_xlabel(f"PC1 ({var[0]:.0%} of variance)")
            ax.set_ylabel(f"PC2 ({var[1]:.0%})")
            ax.legend(fontsize=8, markerscale=2)
            ax.grid(alpha=0.3)
    fig.suptitle("Embeddings, 2-D PCA: separated colours mean the attribute is visible")
    return _save(fig, path)


def pareto_front(uar: Any, unfairness: Any) -> np.ndarray:
    """Mask of the points no other point beats on both UAR (higher) and unfairness (lower).

    Parameters
    ----------
    uar : array-like of shape (n,)
        Accuracy of each point.
    unfairness : array-like of shape (n,)
        Fairness gap of each point.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True for Pareto-optimal points; points with a NaN are never optimal.
    """
    u = np.asarray(uar, dtype=float)
    f = np.asarray(unfairness, dtype=float)
    if u.shape != f.shape or u.ndim != 1:
        raise ReportError(f"pareto_front: shapes {u.shape} and {f.shape}; pass two 1-D arrays")
    ok = np.isfinite(u) & np.isfinite(f)
    better_eq = (u[None, :] >= u[:, None]) & (f[None, :] <= f[:, None])
    strictly = (u[None, :] > u[:, None]) | (f[None, :] < f[:, None])
    dominated = (better_eq & strictly & ok[None, :]).any(axis=1)
    return ok & ~dominated


def has_sweep(results: pd.DataFrame | str | os.PathLike) -> bool:
    """Whether the results hold at least two sweep points of one method."""
    df = read_results(results)
    return bool((df.groupby("method")["sweep"].nunique() > 1).any())


def plot_pareto(
    results: pd.DataFrame | str | os.PathLike,
    path: str | os.PathLike,
    *,
    fairness: str = "dsp",
    role: str = "target",
) -> Path:
    """UAR against a fairness gap for every sweep point, with the Pareto front drawn.

    Each point is one (method, sweep point), averaged over emotions and seeds; the front joins
    the points that no other point beats on both axes. One panel per corpus of ``role``.

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table with a ``sweep`` column.
    path : path
        PNG to write.
    fairness : str, default "dsp"
        Gap metric on the x axis.
    role : {"target", "source"}, default "target"
        Which evaluations to plot.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ReportError
        If there is no sweep or no row of ``role``.
    """
    df = read_results(results, need=["uar", fairness])
    if not has_sweep(df):
        raise ReportError(
            "results: no method has two sweep points; configure a sweep "
            "(e.g. alpha: [0.1, 1.0]) to plot a Pareto front"
        )
    df = df[df["role"] == role]
    if df.empty:
        raise ReportError(f"results: no rows with role {role!r}; pick 'source' or 'target'")
    colors = _method_colors(df["method"])
    blocks = ordered_blocks(df)
    fig = Figure(figsize=(6.8 * len(blocks), 4.8), layout="constrained")
    axes = fig.subplots(1, len(blocks), squeeze=False)[0]
    for ax, (values, part) in zip(axes, blocks, strict=True):
        agg = _over_emotions(part, ["method", "sweep"], ["uar", fairness])
        front = pareto_front(agg["uar"], agg[fairness])
        for i, row in agg.iterrows():
            sub = agg.loc[[i]]
            ax.errorbar(
                row[fairness],
                row["uar"],
                xerr=_err(sub, fairness),
                yerr=_err(sub, "uar"),
                fmt="o",
                color=colors[row["method"]],
                ms=7,
                mec="black" if front[i] else "none",
                capsize=2,
                elinewidth=0.7,
            )
            if row["sweep"]:
                ax.annotate(
                    row["sweep"],
                    (row[fairness], row["uar"]),
                    fontsize=7,
                    xytext=(4, 3),
                    textcoords="offset points",
                )
        pts = agg[front].sort_values(fairness)
        ax.step(
            pts[fairness],
            pts["uar"],
            where="post",
            color="black",
            lw=1,
            ls="--",
            label="Pareto front",
        )
        ax.set_xlabel(_LABELS.get(fairness, fairness))
        ax.set_ylabel(_LABELS["uar"])
        ax.set_title(block_title(values), fontsize=10)
        ax.grid(alpha=0.3)
        handles = [
            Line2D([], [], color=colors[m], marker="o", ls="", label=method_label(m))
            for m in dict.fromkeys(agg["method"])
        ]
        handles.append(Line2D([], [], color="black", ls="--", label="Pareto front"))
        ax.legend(handles=handles, fontsize=8)
    fig.suptitle("Sweep: accuracy against fairness (mean over emotions and seeds)")
    return _save(fig, path)
