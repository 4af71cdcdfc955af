"""Tables, figures and the HTML report of an experiment's results.

Everything here reads a results DataFrame (one row per run and evaluated corpus; required
columns ``method``, ``emotion``, ``seed``, ``corpus``, ``role`` plus the metrics shown; see
:mod:`fairser.report._results` for the optional columns it understands: sweep points, interval
bounds, ``<metric>_note`` reasons for undefined values, ``status``/``reason`` of failed runs,
gender probes) and writes text or PNG files. Nothing trains or evaluates: the report is a pure
function of the results. Method names and labels come from :mod:`fairser.methods`.

Modules: ``table`` (the paper table), ``failures`` (failed runs), ``comparison`` (paired
tests), ``nulls`` (gaps against speaker reassignments), ``plots`` (the main figures),
``tradeoff`` (accuracy against fairness with the Pareto front), ``embeddings`` (PCA figure),
``html`` (the page); ``_results``, ``_order``, ``_render`` and ``_figure`` hold what they
share.
"""

from __future__ import annotations

from fairser.report._order import EXTRA_METHODS, method_label, method_order
from fairser.report._results import ReportError, read_results
from fairser.report.comparison import comparison_html, comparison_markdown
from fairser.report.embeddings import plot_embeddings
from fairser.report.failures import failed_runs
from fairser.report.html import DETECTION, FIGURES, write_report
from fairser.report.nulls import gap_null_html, gap_null_markdown
from fairser.report.plots import plot_fairness_gap, plot_fairness_vs_uar, plot_recall_by_gender
from fairser.report.table import (
    METRIC_HEADERS,
    TableBlock,
    paper_tables,
    table_html,
    table_markdown,
)
from fairser.report.tradeoff import has_sweep, has_tradeoff, plot_pareto

__all__ = [
    "DETECTION",
    "EXTRA_METHODS",
    "FIGURES",
    "METRIC_HEADERS",
    "ReportError",
    "TableBlock",
    "comparison_html",
    "comparison_markdown",
    "failed_runs",
    "gap_null_html",
    "gap_null_markdown",
    "has_sweep",
    "has_tradeoff",
    "method_label",
    "method_order",
    "paper_tables",
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
