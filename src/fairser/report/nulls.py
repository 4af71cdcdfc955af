"""Gap tables against the data's own noise: each measured gap beside what reassigning the
speakers' genders, and a classifier with equal error rates for both genders, would measure."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from fairser.report._render import (
    TableBlock,
    blocks_html,
    blocks_markdown,
    method_blocks,
    plain_blocks,
)
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
    min_p: list[float] = []

    def suffix(part: pd.DataFrame) -> str:
        if "min_p" not in part.columns or "exact" not in part.columns:
            return ""
        exact = part[part["exact"].astype(bool)]
        if not len(exact):
            return ""
        low = float(exact["min_p"].max())
        min_p.append(low)
        n = int(exact["n_assignments"].min())
        return f" ({n} speaker assignments, smallest possible p {low:.2f})"

    def cell(rec: Any) -> tuple[str, bool] | None:
        if not math.isfinite(rec.estimate):
            return None
        p = rec.p_value
        sig = math.isfinite(p) and p < alpha
        fair = f"fair {rec.fair_mean:.{digits}f}"
        lo, hi = getattr(rec, "fair_lo", math.nan), getattr(rec, "fair_hi", math.nan)
        if math.isfinite(lo) and math.isfinite(hi):
            fair += f" [{lo:.{digits}f}-{hi:.{digits}f}]"
        perm = ("" if not math.isfinite(rec.permuted_mean) else
                f"reassigned {rec.permuted_mean:.{digits}f}, p={p:.2f}; ")
        return f"{rec.estimate:.{digits}f} ({perm}{fair}){' *' if sig else ''}", sig

    blocks = method_blocks(gap_nulls, cell, title_suffix=suffix)
    legend = (
        "Each gap (mean over seeds), then its mean over reassignments of the genders to the "
        "speakers (each speaker keeps one gender, each gender its number of speakers) with the "
        "share of reassignments whose gap is at least as large (p), then the gap a classifier "
        "with the same error rates for every row of a class measures on these rows (fair: its "
        "mean [central range]; a reference, not a floor: one model can measure less by "
        "chance). A gap near 'reassigned' is about which speakers are in each gender, a gap "
        "within 'fair' is the noise of these counts, a gap above both is a gender effect. "
        "Column 'mean': the mean over the tasks, with the range and p-value of that mean. "
        f"* marks p < {alpha:g}."
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
    return blocks_markdown(
        plain_blocks(blocks), legend, lambda e, m: f"{e} {_header(m)}", heading_level
    )


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
