"""What every figure shares: saving a PNG, colours, error bars, means over emotions, notes.

Figures use successful runs only. A mean over emotions leaves out, for each metric, the
emotions where that metric is undefined (or missing) in any row of the panel, for every method
alike, so methods stay comparable; :func:`over_emotions` returns a note for each emotion left
out and :func:`panel_note` prints such notes on the panel, so a figure never hides what it
dropped.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from fairser.report._order import method_order, method_rank
from fairser.report._results import (
    NOTE_SUFFIX,
    ReportError,
    aggregate,
    atomic_write_bytes,
    failed_rows,
    ok_rows,
)

__all__ = [
    "DPI",
    "GENDER_COLORS",
    "LABELS",
    "MARKERS",
    "SHORT",
    "error_bars",
    "failed_note",
    "method_colors",
    "over_emotions",
    "panel_note",
    "save",
    "sorted_keys",
    "successful",
    "bar_errors",
]

LABELS = {
    "uar": "UAR (higher is better)",
    "dsp": "dSP = |ΔP(ŷ=1)| (lower is fairer)",
    "deo_max": "dEO = max(|ΔTPR|, |ΔFPR|) (lower is fairer)",
    "deo_sum": "dEO = |ΔTPR| + |ΔFPR| (lower is fairer)",
    "tpr_gap": "|ΔTPR| (lower is fairer)",
    "fpr_gap": "|ΔFPR| (lower is fairer)",
}
SHORT = {
    "dsp": "dSP",
    "deo_max": "dEO",
    "deo_sum": "dEO(sum)",
    "tpr_gap": "dTPR",
    "fpr_gap": "dFPR",
    "uar": "UAR",
    "uar_m": "UAR(M)",
    "uar_f": "UAR(F)",
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
GENDER_COLORS = {"M": "#3b6fb6", "F": "#d1495b"}
DPI = 110


def save(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` to PNG and write it atomically to ``path``."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return atomic_write_bytes(Path(path), buf.getvalue())


def successful(df: pd.DataFrame) -> pd.DataFrame:
    """The successful rows of checked results; an error when no run succeeded."""
    good = ok_rows(df)
    if good.empty:
        raise ReportError(
            "results: every run failed (status != 'ok'); nothing to plot, see the reasons"
        )
    return good


def method_colors(methods: Sequence[str]) -> dict[str, Any]:
    """A colour per method: tab10 for up to ten methods, tab20 beyond. The known methods
    (:func:`~fairser.report._order.method_order`) keep the colour of their display rank in
    every figure; the others take the first colours no method of the figure uses, so that no
    two methods of a figure share one (while the palette lasts)."""
    ranks = method_rank(methods)
    n = 10 if len(ranks) <= 10 else 20
    cmap = matplotlib.colormaps[f"tab{n}"]
    n_known = len(method_order())
    index = {m: r % n for m, r in ranks.items() if r < n_known}
    free = [i for i in range(n) if i not in set(index.values())]
    for k, m in enumerate(m for m, r in sorted(ranks.items(), key=lambda t: t[1]) if r >= n_known):
        index[m] = free[k] if k < len(free) else ranks[m] % n
    return {m: cmap(index[m]) for m in ranks}


def bar_errors(agg: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2, n): sd over seeds if defined, else the interval, else 0."""
    mean = agg[metric].to_numpy(float)
    sd = agg[f"{metric}_sd"].to_numpy(float)
    lo = agg[f"{metric}_lo"].to_numpy(float)
    hi = agg[f"{metric}_hi"].to_numpy(float)
    low = np.where(np.isfinite(sd), sd, np.where(np.isfinite(lo), mean - lo, 0.0))
    high = np.where(np.isfinite(sd), sd, np.where(np.isfinite(hi), hi - mean, 0.0))
    return np.nan_to_num(np.clip(np.vstack([low, high]), 0.0, None))


def error_bars(
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


def _left_out(part: pd.DataFrame, metric: str) -> dict[str, str]:
    """Emotions where ``metric`` is undefined or missing in some row, with the reason."""
    values = pd.to_numeric(part[metric], errors="coerce") if metric in part else None
    notes = part.get(f"{metric}{NOTE_SUFFIX}", pd.Series("", index=part.index)).astype(str)
    bad = (notes != "") | (values.isna() if values is not None else True)
    out: dict[str, str] = {}
    for emotion, rows in part[bad].groupby("emotion", sort=False):
        texts = [t for t in dict.fromkeys(notes[rows.index]) if t]
        out[str(emotion)] = texts[0] if texts else "missing"
    return out


def over_emotions(
    part: pd.DataFrame, keys: list[str], metrics: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Mean over emotions within each seed, then :func:`aggregate` over seeds.

    For each metric, an emotion where the metric is undefined or missing in any row of
    ``part`` is left out of every configuration's mean.

    Returns
    -------
    agg : pandas.DataFrame
        As :func:`fairser.report._results.aggregate`, one row per ``keys`` group.
    notes : list of str
        One line per (metric, emotion) left out, with the reason.
    """
    cols = [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi") if c in part.columns]
    numeric = part[keys + ["seed"]].copy()
    for c in cols:
        numeric[c] = pd.to_numeric(part[c], errors="coerce")
    notes = []
    multi = part["emotion"].nunique() > 1
    for m in metrics:
        left = _left_out(part, m)
        if not left or not multi:
            continue
        drop = part["emotion"].isin(list(left)).to_numpy()
        for c in (m, f"{m}_lo", f"{m}_hi"):
            if c in numeric:
                numeric.loc[drop, c] = np.nan
        for emotion, why in left.items():
            notes.append(f"{SHORT.get(m, m)}: {emotion} left out of the mean ({why})")
    per_seed = numeric.groupby(keys + ["seed"], sort=False, dropna=False).mean().reset_index()
    return aggregate(per_seed, by=keys, metrics=metrics), notes


def sorted_keys(agg: pd.DataFrame, ranks: dict[str, int]) -> pd.DataFrame:
    """Rows of ``agg`` in method display order, each method's sweep points as they appear."""
    order = [(ranks[m], i) for i, m in enumerate(agg["method"])]
    return agg.iloc[sorted(range(len(agg)), key=order.__getitem__)].reset_index(drop=True)


def failed_note(df: pd.DataFrame, part: pd.DataFrame) -> list[str]:
    """A note counting the failed runs (of the full results ``df``) left out of a panel.

    The panel is described by ``part``: failed rows with its corpora, roles, targets and
    conditions count; failures a later successful rerun superseded do not.
    """
    bad = failed_rows(df)
    bad = bad[~bad["superseded"]]
    for col in ("corpus", "role", "target", "condition"):
        bad = bad[bad[col].isin(set(part[col]))]
    runs = bad.drop_duplicates(["method", "sweep", "emotion", "seed", "target", "condition"])
    if runs.empty:
        return []
    return [f"{len(runs)} failed run(s) left out (see Failed runs)"]


def panel_note(ax: Any, lines: Sequence[str], *, width: int = 100, max_lines: int = 5) -> None:
    """Print notes (what a panel leaves out, and why) in small text under its x-axis label.

    Below the axes they never hide data; constrained layout makes room for them.
    """
    lines = list(dict.fromkeys(lines))
    if not lines:
        return
    shown = lines[:max_lines]
    if len(lines) > max_lines:
        shown.append(f"... and {len(lines) - max_lines} more (see the table notes)")
    text = "\n".join(textwrap.fill(line, width=width, subsequent_indent="  ") for line in shown)
    ax.annotate(
        text,
        xy=(0.5, 0.0),
        xycoords=ax.xaxis.label,
        xytext=(0, -3),
        textcoords="offset points",
        ha="center",
        va="top",
        fontsize=7,
        color="#8a1c1c",
        annotation_clip=False,
    )
