"""The embedding figure: a 2-D PCA of model embeddings, coloured by gender and by corpus.

Robust to what a failed or degenerate model produces: rows with NaN/inf are dropped (and
counted on the panel), a set with fewer than three finite rows or no variance gets a panel
that says so instead of a projection, and no input makes it crash.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from fairser.report._figure import GENDER_COLORS, panel_note, save
from fairser.report._results import ReportError

__all__ = ["plot_embeddings"]


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
    keep = np.isfinite(x).all(axis=1)
    return x[keep], gender[keep], corpus[keep]


def _degenerate(x: np.ndarray, n_rows: int) -> str:
    """Why ``x`` (finite rows only) cannot be projected, or ""."""
    dropped = n_rows - len(x)
    if len(x) < 3:
        bad = f"{dropped} of {n_rows} rows are NaN/inf" if dropped else f"only {n_rows} rows"
        return f"no projection: {bad}; a projection needs 3 finite rows"
    if not np.ptp(x, axis=0).any():
        return "no projection: every embedding is the same vector (a collapsed model)"
    return ""


def _empty_panel(ax: Any, title: str, why: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.text(
        0.5,
        0.5,
        textwrap.fill(why, width=40),
        ha="center",
        va="center",
        fontsize=9,
        color="#8a1c1c",
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])


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
        n_rows = len(np.asarray(item.get("gender", [])))
        x, gender, corpus = _embedding_arrays(name, item)
        axes = [grid[r // per_row][2 * (r % per_row) + c] for c in range(2)]
        why = _degenerate(x, n_rows)
        if why:
            for ax, what in zip(axes, ("gender", "corpus"), strict=True):
                _empty_panel(ax, f"{name}: coloured by {what}", why)
            continue
        dropped = n_rows - len(x)
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
            [(gender, GENDER_COLORS, "gender"), (corpus, corpus_colors, "corpus")]
        ):
            ax = axes[c]
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
            if dropped:
                panel_note(ax, [f"{dropped} of {n_rows} rows with NaN/inf left out"])
    fig.suptitle("Embeddings, 2-D PCA: separated colours mean the attribute is visible")
    return save(fig, path)
