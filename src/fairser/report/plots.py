"""The main PNG figures of a results table (matplotlib, Agg canvas, no pyplot state).

Every function writes one PNG atomically and returns its path. Figures show successful runs
only and average what they do not show: over seeds always, and over emotions where the x axis
is the method (leaving out, with a note on the panel, emotions where a metric is undefined).
Error bars are the standard deviation over seeds when there are several, else the mean of the
runs' speaker-bootstrap interval bounds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fairser.report._figure import (
    GENDER_COLORS,
    LABELS,
    MARKERS,
    SHORT,
    bar_errors,
    error_bars,
    failed_note,
    method_colors,
    over_emotions,
    panel_note,
    save,
    sorted_keys,
    successful,
)
from fairser.report._order import block_title, method_label, method_rank, ordered_blocks
from fairser.report._results import NOTE_SUFFIX, ReportError, aggregate, read_results

__all__ = ["plot_fairness_gap", "plot_fairness_vs_uar", "plot_recall_by_gender"]


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
    full = read_results(results, need=["uar", *fairness])
    df = successful(full)
    blocks = ordered_blocks(df)
    colors = method_colors(df["method"])
    emotions = list(dict.fromkeys(df["emotion"]))
    markers = {e: MARKERS[i % len(MARKERS)] for i, e in enumerate(emotions)}
    fig = Figure(figsize=(5.2 * len(fairness) + 2.2, 3.9 * len(blocks)), layout="constrained")
    axes = fig.subplots(len(blocks), len(fairness), squeeze=False)
    for r, (values, part) in enumerate(blocks):
        agg = aggregate(part, by=["method", "sweep", "emotion"], metrics=["uar", *fairness])
        point_colors = [colors[m] for m in agg["method"]]
        hollow = agg["sweep"].to_numpy(dtype=str) != ""
        for c, metric in enumerate(fairness):
            ax = axes[r][c]
            error_bars(
                ax,
                agg[metric].to_numpy(float),
                agg["uar"].to_numpy(float),
                bar_errors(agg, metric),
                bar_errors(agg, "uar"),
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
            ax.set_xlabel(LABELS.get(metric, metric))
            ax.set_ylabel(LABELS["uar"])
            ax.set_title(block_title(values), fontsize=10)
            ax.grid(alpha=0.3)
            ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
            panel_note(ax, failed_note(full, part) + _undrawn(agg, ["uar", metric]), width=80)
    handles = [
        Line2D([], [], color=colors[m], marker="o", ls="", ms=7, label=method_label(m))
        for m in colors
    ]
    handles += [
        Line2D([], [], color="grey", marker=markers[e], ls="", ms=7, label=e) for e in emotions
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="method / emotion")
    fig.suptitle("Fairness against accuracy (error bars: seed sd or bootstrap interval)")
    return save(fig, path)


def _undrawn(agg: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """Notes for the points of ``agg`` not drawn because a coordinate is undefined."""
    lines = []
    for m in metrics:
        gone = agg[~np.isfinite(agg[m].to_numpy(float))]
        if len(gone):
            why = "; ".join(dict.fromkeys(t for t in gone[f"{m}{NOTE_SUFFIX}"] if t)) or "missing"
            lines.append(f"{len(gone)} point(s) not drawn, {SHORT.get(m, m)} undefined: {why}")
    return lines


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
    full = read_results(results, need=["uar_m", "uar_f"])
    df = successful(full)
    blocks = ordered_blocks(df)
    ranks = method_rank(df["method"])
    ncols = min(2, len(blocks))
    nrows = int(np.ceil(len(blocks) / ncols))
    fig = Figure(figsize=(6.5 * ncols, 3.8 * nrows), layout="constrained")
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (values, part) in zip(axes, blocks, strict=False):
        agg, notes = over_emotions(part, ["method", "sweep"], ["uar_m", "uar_f"])
        agg = sorted_keys(agg, ranks)
        notes += failed_note(full, part)
        x = np.arange(len(agg))
        for offset, g in ((-0.2, "M"), (0.2, "F")):
            m = f"uar_{g.lower()}"
            ax.bar(
                x + offset,
                agg[m],
                width=0.4,
                color=GENDER_COLORS[g],
                label=g,
                yerr=bar_errors(agg, m),
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
        notes += _undrawn(agg, ["uar_m", "uar_f"])
        ax.set_ylim(0, 1)
        ax.set_xlabel("method")
        panel_note(ax, notes)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(block_title(values), fontsize=10)
        ax.legend(fontsize=8, loc="upper right", ncols=2)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(blocks) :]:
        ax.set_visible(False)
    fig.suptitle("Recall per gender (mean over emotions and seeds)")
    return save(fig, path)


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
    full = read_results(results, need=list(fairness))
    df = successful(full)
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
    fig = Figure(figsize=(6.0 * len(fairness), 4.6 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), len(fairness), squeeze=False)
    for r, ((target, condition), part) in enumerate(groups):
        src = part[part["role"] == "source"]
        tgt = part[part["role"] == "target"]
        a, notes_a = over_emotions(src, ["method", "sweep"], fairness)
        b, notes_b = over_emotions(tgt, ["method", "sweep"], fairness)
        notes = [f"source {t}" for t in notes_a] + [f"target {t}" for t in notes_b]
        failed = failed_note(full, part)
        both = sorted_keys(a.merge(b[["method", "sweep"]], on=["method", "sweep"]), ranks)
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
                yerr=bar_errors(a, metric),
                fmt="o",
                color="#4c956c",
                capsize=2,
                label="source test set",
            )
            ax.errorbar(
                x + 0.12,
                b[metric],
                yerr=bar_errors(b, metric),
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
            ax.set_ylabel(LABELS.get(metric, metric))
            ax.set_ylim(bottom=0)
            title = f"{SHORT.get(metric, metric)}: {src_name} → {tgt_name}"
            if several_conditions:
                title += f" ({condition})"
            ax.set_title(title, fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            short = SHORT.get(metric, metric)
            mine = [t for t in notes if t.split(" ", 1)[1].startswith(f"{short}:")]
            mine += [f"source {t}" for t in _undrawn(a, [metric])]
            mine += [f"target {t}" for t in _undrawn(b, [metric])]
            mine += failed
            panel_note(ax, mine, width=90)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle("Fair on the source is not fair on the target (mean over emotions and seeds)")
    return save(fig, path)
