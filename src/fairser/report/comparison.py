"""Paired-test tables: every method's difference to a baseline with its p-value, per block."""

from __future__ import annotations

import math

import pandas as pd

from fairser.report._order import block_title, method_label, method_rank
from fairser.report._render import TableBlock, blocks_html, blocks_markdown
from fairser.report._results import ReportError
from fairser.report.table import METRIC_HEADERS

__all__ = ["comparison_html", "comparison_markdown"]

_COMPARISON_COLUMNS = ("method", "sweep", "metric", "difference", "p_value")


def _comparison_blocks(
    comparisons: pd.DataFrame, *, digits: int, alpha: float
) -> tuple[list[TableBlock], str]:
    missing = [c for c in _COMPARISON_COLUMNS if c not in comparisons.columns]
    if missing:
        raise ReportError(
            f"comparisons: missing column(s) {missing}; pass the output of "
            "fairser.metrics.compare_methods"
        )
    df = comparisons.copy()
    df["sweep"] = df["sweep"].astype("string").fillna("").astype(str)
    if "emotion" not in df.columns:
        df["emotion"] = "all"
    block_cols = [c for c in ("condition", "target", "role", "corpus") if c in df.columns]
    ranks = method_rank(df["method"])
    metrics = list(dict.fromkeys(df["metric"]))
    emotions = list(dict.fromkeys(df["emotion"]))
    parts = list(df.groupby(block_cols, sort=False)) if block_cols else [((), df)]
    blocks = []
    for key, part in parts:
        key = key if isinstance(key, tuple) else (key,)
        values = dict(zip(block_cols, key, strict=True))
        if {"role", "corpus"} <= set(values):
            title = block_title(values)
        else:
            title = ", ".join(f"{k} {v}" for k, v in values.items()) or "all"
        keys = sorted(
            dict.fromkeys(zip(part["method"], part["sweep"], strict=True)),
            key=lambda k: ranks[k[0]],  # stable: each method's sweep points as they appear
        )
        index = {(r.method, r.sweep, r.emotion, r.metric): r for r in part.itertuples(index=False)}
        columns = [(e, m) for e in emotions for m in metrics if (e in set(part["emotion"]))]
        rows, flags = [], []
        for method, sweep in keys:
            cells, marks = [], []
            for e, m in columns:
                rec = index.get((method, sweep, e, m))
                if rec is None or not math.isfinite(rec.difference):
                    cells.append("–")
                    marks.append(False)
                    continue
                p = rec.p_value
                sig = math.isfinite(p) and p < alpha
                p_text = f"p={p:.3f}" if math.isfinite(p) else "p=–"
                cells.append(f"{rec.difference:+.{digits}f} ({p_text}){' *' if sig else ''}")
                marks.append(sig)
            rows.append((method_label(method, sweep), cells))
            flags.append(marks)
        blocks.append(TableBlock(title=title, columns=columns, rows=rows, best=flags))
    names = list(dict.fromkeys(df["baseline"])) if "baseline" in df.columns else []
    baseline = method_label(str(names[0])) if len(names) == 1 else "the baseline"
    legend = (
        f"Difference to {baseline} (method minus baseline) with its paired speaker-bootstrap "
        f"p-value; * marks p < {alpha:g}, uncorrected for the number of comparisons. For UAR "
        "a positive difference is better, for the gaps a negative one."
    )
    return blocks, legend


def comparison_markdown(
    comparisons: pd.DataFrame, *, digits: int = 3, alpha: float = 0.05, heading_level: int = 3
) -> str:
    """Paired tests against a baseline as Markdown (one block per corpus).

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Output of :func:`fairser.metrics.compare_methods`.
    digits : int, default 3
        Decimals of the differences.
    alpha : float, default 0.05
        Threshold below which a p-value is starred.
    heading_level : int, default 3
        Markdown heading level of each block title.

    Returns
    -------
    str
        A legend line, then per block a heading and a table: methods as rows, one column per
        emotion and metric holding ``difference (p=...)``.
    """
    blocks, legend = _comparison_blocks(comparisons, digits=digits, alpha=alpha)
    # stars mark significance in Markdown; the highlight flags are for HTML only
    plain = [
        TableBlock(b.title, b.columns, b.rows, [[False] * len(f) for f in b.best]) for b in blocks
    ]
    return blocks_markdown(plain, legend, lambda e, m: f"{e} Δ{_header(m)}", heading_level)


def comparison_html(comparisons: pd.DataFrame, *, digits: int = 3, alpha: float = 0.05) -> str:
    """Paired tests against a baseline as an HTML fragment (see :func:`comparison_markdown`).

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Output of :func:`fairser.metrics.compare_methods`.
    digits : int, default 3
        Decimals of the differences.
    alpha : float, default 0.05
        Threshold below which a p-value is starred and the cell highlighted.

    Returns
    -------
    str
        HTML: a legend paragraph, then per block an ``<h3>`` and a table.
    """
    blocks, legend = _comparison_blocks(comparisons, digits=digits, alpha=alpha)
    return blocks_html(blocks, legend, lambda m: "Δ" + _header(m))


def _header(metric: str) -> str:
    return METRIC_HEADERS.get(metric, (metric,))[0]
