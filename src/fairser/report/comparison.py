"""Paired-test tables: every method's difference to a baseline with its p-value, per block."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from fairser.report._order import method_label
from fairser.report._render import (
    TableBlock,
    blocks_html,
    blocks_markdown,
    method_blocks,
    plain_blocks,
)
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

    def cell(rec: Any) -> tuple[str, bool] | None:
        if not math.isfinite(rec.difference):
            return None
        p = rec.p_value
        sig = math.isfinite(p) and p < alpha
        p_text = f"p={p:.3f}" if math.isfinite(p) else "p=–"
        return f"{rec.difference:+.{digits}f} ({p_text}){' *' if sig else ''}", sig

    blocks = method_blocks(comparisons, cell)
    names = (list(dict.fromkeys(comparisons["baseline"])) if "baseline" in comparisons.columns
             else [])
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
    return blocks_markdown(
        plain_blocks(blocks), legend, lambda e, m: f"{e} Δ{_header(m)}", heading_level
    )


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
