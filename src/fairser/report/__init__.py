"""Tables, figures and the HTML report of an experiment's results.

Everything here reads a results DataFrame (one row per run and evaluated corpus; required
columns ``method``, ``emotion``, ``seed``, ``corpus``, ``role`` plus the metrics shown; see
:mod:`fairser.report._results` for the optional columns it understands) and writes text or PNG
files. Nothing trains or evaluates: the report is a pure function of the results.
"""

from __future__ import annotations

from fairser.report._results import METHOD_LABELS, METHOD_ORDER, ReportError, read_results
from fairser.report.html import FIGURES, write_report
from fairser.report.plots import (
    has_sweep,
    pareto_front,
    plot_embeddings,
    plot_fairness_gap,
    plot_fairness_vs_uar,
    plot_pareto,
    plot_recall_by_gender,
)
from fairser.report.table import (
    METRIC_HEADERS,
    TableBlock,
    comparison_html,
    comparison_markdown,
    paper_tables,
    table_html,
    table_markdown,
)

__all__ = [
    "FIGURES",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "METRIC_HEADERS",
    "ReportError",
    "TableBlock",
    "comparison_html",
    "comparison_markdown",
    "has_sweep",
    "paper_tables",
    "pareto_front",
    "plot_embeddings",
    "plot_fairness_gap",
    "plot_fairness_vs_uar",
    "plot_pareto",
    "plot_recall_by_gender",
    "read_results",
    "table_html",
    "table_markdown",
    "write_report",
]
