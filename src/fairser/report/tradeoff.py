"""The trade-off figure: accuracy against fairness per configuration, with the Pareto front.

A configuration is a method (a registered one or a named variant such as ``recommended``) and
its sweep point (``sweep``: a label such as ``alpha=0.5,beta=1`` or a lever strength). The
figure is drawn when the results hold a sweep point or a variant (:func:`has_tradeoff`). Each
configuration is one point, the mean over seeds and emotion tasks (emotions where a metric is
undefined are left out for every configuration, with a note), with error bars from the seeds.
The Pareto front (:func:`fairser.metrics.pareto_front`: no other configuration is both more
accurate and fairer) is drawn as a dashed step line through highlighted points; the others are
faded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fairser.metrics import pareto_front
from fairser.report._figure import (
    LABELS,
    SHORT,
    bar_errors,
    failed_note,
    method_colors,
    over_emotions,
    panel_note,
    save,
    successful,
)
from fairser.report._order import (
    block_title,
    method_label,
    method_order,
    method_rank,
    ordered_blocks,
)
from fairser.report._results import ReportError, ok_rows, read_results

__all__ = ["has_sweep", "has_tradeoff", "plot_pareto"]


def has_sweep(results: pd.DataFrame | str | os.PathLike) -> bool:
    """Whether some successful run has a sweep point (a non-empty ``sweep``)."""
    df = ok_rows(read_results(results))
    return bool((df["sweep"] != "").any())


def has_tradeoff(results: pd.DataFrame | str | os.PathLike) -> bool:
    """Whether the trade-off figure applies: a sweep point, or a method variant (a method name
    that is not registered, e.g. ``recommended``), in some successful run."""
    df = ok_rows(read_results(results))
    known = set(method_order())
    return bool((df["sweep"] != "").any() or (~df["method"].isin(known)).any())


def plot_pareto(
    results: pd.DataFrame | str | os.PathLike,
    path: str | os.PathLike,
    *,
    fairness: Sequence[str] = ("dsp", "deo_max"),
    role: str = "target",
) -> Path:
    """UAR against each fairness gap for every configuration, with the Pareto front drawn.

    One row of panels per corpus block of ``role`` (a target corpus, a condition), one column
    per fairness metric. Every point is drawn and labelled with its configuration, unless the
    label would overlap one already placed: front labels are placed first (moved down a line
    or more to clear each other), other labels are then hidden where they overlap; the title
    says how many were hidden (every configuration is in the results table).

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table with a ``sweep`` column.
    path : path
        PNG to write.
    fairness : sequence of str, default ("dsp", "deo_max")
        Gap metrics on the x axes (lower is fairer).
    role : {"target", "source"}, default "target"
        Which evaluations to plot.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ReportError
        If there is neither a sweep point nor a variant, no successful row of ``role``, or a
        metric is missing.
    """
    full = read_results(results, need=["uar", *fairness])
    df = successful(full)
    if not has_tradeoff(df):
        raise ReportError(
            "results: no run has a sweep point or a method variant; configure a sweep (e.g. "
            "alpha: [0.1, 1.0]) or a variant in `methods:` to plot the trade-off"
        )
    df = df[df["role"] == role]
    if df.empty:
        raise ReportError(f"results: no rows with role {role!r}; pick 'source' or 'target'")
    colors = method_colors(df["method"])
    ranks = method_rank(df["method"])
    blocks = ordered_blocks(df)
    labels: list[tuple[Any, list[tuple[Any, bool]]]] = []
    fig = Figure(figsize=(6.4 * len(fairness) + 1.6, 4.8 * len(blocks)), layout="constrained")
    axes = fig.subplots(len(blocks), len(fairness), squeeze=False)
    for r, (values, part) in enumerate(blocks):
        for c, metric in enumerate(fairness):
            ax = axes[r][c]
            agg, notes = over_emotions(part, ["method", "sweep"], ["uar", metric])
            agg = agg.assign(_rank=[ranks[m] for m in agg["method"]]).sort_values(
                "_rank", kind="stable"
            )
            front = pareto_front(agg, x="uar", y=metric).to_numpy()
            labels.append((ax, _draw_points(ax, agg, metric, front, colors)))
            pts = agg[front].sort_values(metric)
            ax.step(pts[metric], pts["uar"], where="post", color="black", lw=1, ls="--", zorder=2)
            undrawn = int((~agg[["uar", metric]].notna().all(axis=1)).sum())
            if undrawn:
                notes.append(f"{undrawn} configuration(s) not drawn: a coordinate is undefined")
            panel_note(ax, notes + failed_note(full, part))
            ax.set_xlabel(LABELS.get(metric, metric))
            ax.set_ylabel(LABELS["uar"])
            ax.set_title(f"{block_title(values)}: UAR against {SHORT.get(metric, metric)}")
            ax.grid(alpha=0.3)
            ax.margins(x=0.12, y=0.1)
    handles = [
        Line2D([], [], color=colors[m], marker="o", ls="", ms=7, label=method_label(m))
        for m in colors
    ]
    handles.append(
        Line2D([], [], color="black", marker="o", mfc="white", ls="--", label="Pareto front")
    )
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="method")
    title = ("Trade-off: each point a configuration (mean over seeds and emotions)\n"
             "bars: seed sd, or a single seed's bootstrap interval")
    fig.suptitle(title)
    hidden = _declutter(fig, labels)
    if hidden:
        fig.suptitle(f"{title}\n{hidden} label(s) hidden where they overlapped another label "
                     "(front labels first)")
    return save(fig, path)


def _declutter(fig: Figure, labels: list[tuple[Any, list[tuple[Any, bool]]]]) -> int:
    """Keep labels from overlapping; the number hidden.

    Front labels come first: one that overlaps a label already placed is moved down a line
    at a time (up to :data:`_FRONT_SHIFTS` lines) until it is free, and hidden only if no
    place is. Labels of points off the front are hidden when they overlap a placed label.
    """
    FigureCanvasAgg(fig)
    fig.canvas.draw()  # the constrained layout places the axes, so the boxes are final
    renderer = fig.canvas.get_renderer()
    hidden = 0
    for _ax, texts in labels:
        placed: list[Any] = []
        for text, on in sorted(texts, key=lambda item: not item[1]):  # front first
            shifts = range(_FRONT_SHIFTS + 1) if on else range(1)
            x0, y0 = text.xyann
            for k in shifts:
                text.xyann = (x0, y0 - k * _LINE_POINTS)
                box = text.get_window_extent(renderer)
                if not any(box.overlaps(other) for other in placed):
                    placed.append(box)
                    break
            else:
                text.xyann = (x0, y0)
                text.set_visible(False)
                hidden += 1
    return hidden


#: Lines a front label may move down to clear another label, and the height of one line.
_FRONT_SHIFTS = 3
_LINE_POINTS = 9.0


def _draw_points(
    ax, agg: pd.DataFrame, metric: str, front, colors: dict
) -> list[tuple[Any, bool]]:
    """Every configuration as a labelled point; front points bold, the others faded.

    Returns each label with whether its point is on the front.
    """
    texts: list[tuple[Any, bool]] = []
    for i, (_, row) in enumerate(agg.iterrows()):
        if not (pd.notna(row[metric]) and pd.notna(row["uar"])):
            continue
        sub = agg.iloc[[i]]
        on = bool(front[i])
        ax.errorbar(
            row[metric],
            row["uar"],
            xerr=bar_errors(sub, metric),
            yerr=bar_errors(sub, "uar"),
            fmt="o",
            color=colors[row["method"]],
            ms=8 if on else 6,
            mec="black" if on else "none",
            mew=1.2,
            alpha=1.0 if on else 0.45,
            capsize=2,
            elinewidth=0.7,
            zorder=3 if on else 2,
        )
        text = ax.annotate(
            method_label(row["method"], row["sweep"]),
            (row[metric], row["uar"]),
            fontsize=7,
            xytext=(5, 4),
            textcoords="offset points",
            alpha=1.0 if on else 0.6,
            fontweight="bold" if on else "normal",
        )
        texts.append((text, on))
    return texts
