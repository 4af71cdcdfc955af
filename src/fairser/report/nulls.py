"""Gap tables against the data's own noise: each measured gap beside what reassigning the
speakers' genders, and a classifier with equal error rates for both genders, would measure."""

from __future__ import annotations

import math

import pandas as pd

from fairser.report._order import block_title, method_label, method_rank
from fairser.report._render import TableBlock, blocks_html, blocks_markdown
from fairser.report._results import ReportError
from fairser.report.table import METRIC_HEADERS

__all__ = ["gap_null_html", "gap_null_markdown"]

_NULL_COLUMNS = ("method", "sweep", "metric", "estimate", "permuted_mean", "p_value",
                 "fair_mean")


def _blocks(gap_nulls: pd.DataFrame, *, digits: int, alpha: float) -> tuple[list[TableBlock], str]:
    missing = [c for c in _NULL_COLUMNS if c not in gap_nulls.columns]
    if missing:
        raise ReportError(
            f"gap_nulls: missing column(s) {missing}; pass the output of "
            "fairser.metrics.gap_nulls"
        )
    df = gap_nulls.copy()
    df["sweep"] = df["sweep"].astype("string").fillna("").astype(str)
    if "emotion" not in df.columns:
        df["emotion"] = "all"
    block_cols = [c for c in ("condition", "target", "role", "corpus") if c in df.columns]
    ranks = method_rank(df["method"])
    metrics = list(dict.fromkeys(df["metric"]))
    emotions = list(dict.fromkeys(df["emotion"]))
    parts = list(df.groupby(block_cols, sort=False)) if block_cols else [((), df)]
    blocks, min_p = [], []
    for key, part in parts:
        key = key if isinstance(key, tuple) else (key,)
        values = dict(zip(block_cols, key, strict=True))
        if {"role", "corpus"} <= set(values):
            title = block_title(values)
        else:
            title = ", ".join(f"{k} {v}" for k, v in values.items()) or "all"
        if "min_p" in part.columns and "exact" in part.columns:
            exact = part[part["exact"].astype(bool)]
            if len(exact):
                n = int(exact["n_assignments"].min())
                low = float(exact["min_p"].max())
                title += f" ({n} speaker assignments, smallest possible p {low:.2f})"
                min_p.append(low)
        keys = sorted(
            dict.fromkeys(zip(part["method"], part["sweep"], strict=True)),
            key=lambda k: ranks[k[0]],
        )
        index = {(r.method, r.sweep, r.emotion, r.metric): r for r in part.itertuples(index=False)}
        columns = [(e, m) for e in emotions for m in metrics if e in set(part["emotion"])]
        rows, flags = [], []
        for method, sweep in keys:
            cells, marks = [], []
            for e, m in columns:
                rec = index.get((method, sweep, e, m))
                if rec is None or not math.isfinite(rec.estimate):
                    cells.append("–")
                    marks.append(False)
                    continue
                p = rec.p_value
                sig = math.isfinite(p) and p < alpha
                cells.append(
                    f"{rec.estimate:.{digits}f} (reassigned {rec.permuted_mean:.{digits}f}, "
                    f"p={p:.2f}; fair {rec.fair_mean:.{digits}f}){' *' if sig else ''}"
                )
                marks.append(sig)
            rows.append((method_label(method, sweep), cells))
            flags.append(marks)
        blocks.append(TableBlock(title=title, columns=columns, rows=rows, best=flags))
    legend = (
        "Each gap (mean over seeds), then its mean over reassignments of the genders to the "
        "speakers (each speaker keeps one gender, each gender its number of speakers) with the "
        "share of reassignments whose gap is at least as large (p), then the mean gap of a "
        "classifier with the same error rates for both genders on these rows (fair): a gap "
        "near 'reassigned' is about which speakers are in each gender, a gap near 'fair' is "
        f"the noise of these counts. * marks p < {alpha:g}."
    )
    if min_p and max(min_p) >= alpha:
        legend += (" With this few speakers no p-value can fall below "
                   f"{max(min_p):.2f}: a gender effect cannot be shown here.")
    return blocks, legend


def gap_null_markdown(
    gap_nulls: pd.DataFrame, *, digits: int = 3, alpha: float = 0.05, heading_level: int = 3
) -> str:
    """Gaps against speaker reassignments as Markdown (one block per corpus).

    Parameters
    ----------
    gap_nulls : pandas.DataFrame
        Output of :func:`fairser.metrics.gap_nulls`.
    digits : int, default 3
        Decimals of the gaps.
    alpha : float, default 0.05
        Threshold below which a p-value is starred.
    heading_level : int, default 3
        Markdown heading level of each block title.

    Returns
    -------
    str
        A legend line, then per block a heading and a table: methods as rows, one column per
        emotion and gap.
    """
    blocks, legend = _blocks(gap_nulls, digits=digits, alpha=alpha)
    plain = [
        TableBlock(b.title, b.columns, b.rows, [[False] * len(f) for f in b.best]) for b in blocks
    ]
    return blocks_markdown(plain, legend, lambda e, m: f"{e} {_header(m)}", heading_level)


def gap_null_html(gap_nulls: pd.DataFrame, *, digits: int = 3, alpha: float = 0.05) -> str:
    """Gaps against speaker reassignments as an HTML fragment (see :func:`gap_null_markdown`).

    Parameters
    ----------
    gap_nulls : pandas.DataFrame
        Output of :func:`fairser.metrics.gap_nulls`.
    digits : int, default 3
        Decimals of the gaps.
    alpha : float, default 0.05
        Threshold below which a p-value is starred and the cell highlighted.

    Returns
    -------
    str
        HTML: a legend paragraph, then per block an ``<h3>`` and a table.
    """
    blocks, legend = _blocks(gap_nulls, digits=digits, alpha=alpha)
    return blocks_html(blocks, legend, _header)


def _header(metric: str) -> str:
    return METRIC_HEADERS.get(metric, (metric,))[0]
