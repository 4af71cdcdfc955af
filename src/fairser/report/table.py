"""The paper's table: methods as rows, emotions as columns, UAR / dSP / dEO, a block per corpus."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from fairser.report._results import (
    ReportError,
    aggregate,
    block_title,
    method_label,
    method_rank,
    ordered_blocks,
    read_results,
)

__all__ = [
    "METRIC_HEADERS",
    "TableBlock",
    "comparison_html",
    "comparison_markdown",
    "paper_tables",
    "table_html",
    "table_markdown",
]

#: Column header and direction ("higher"/"lower" is better; "chance": 0.5 is the goal, never
#: bolded) of every metric the table can show.
METRIC_HEADERS: dict[str, tuple[str, str]] = {
    "uar": ("UAR", "higher"),
    "uar_m": ("UAR(M)", "higher"),
    "uar_f": ("UAR(F)", "higher"),
    "dsp": ("dSP", "lower"),
    "deo_max": ("dEO", "lower"),
    "deo_sum": ("dEO(sum)", "lower"),
    "tpr_gap": ("dTPR", "lower"),
    "fpr_gap": ("dFPR", "lower"),
    "gc_acc": ("GC acc", "chance"),
    "probe": ("probe", "chance"),
    "probe_input": ("probe(input)", "chance"),
}

Spread = Literal["auto", "sd", "ci", "none"]


@dataclass(frozen=True)
class TableBlock:
    """One block of the paper table, already formatted.

    Attributes
    ----------
    title : str
        Heading, e.g. ``casia (target)``.
    columns : list of (str, str)
        ``(emotion, metric)`` of each value column, in order.
    rows : list of (str, list of str)
        Row label and formatted cells.
    best : list of list of bool
        Whether each cell holds the best mean of its column.
    """

    title: str
    columns: list[tuple[str, str]]
    rows: list[tuple[str, list[str]]]
    best: list[list[bool]]


def _check_options(metrics: Sequence[str], spread: str) -> None:
    unknown = [m for m in metrics if m not in METRIC_HEADERS]
    if unknown:
        raise ReportError(f"metrics: {unknown} unknown; pick from {list(METRIC_HEADERS)}")
    if spread not in ("auto", "sd", "ci", "none"):
        raise ReportError(f"spread={spread!r} is not 'auto', 'sd', 'ci' or 'none'; pick one")


def _fmt(value: float, digits: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _cell(row: pd.Series, metric: str, *, spread: str, digits: int) -> str:
    mean = row[metric]
    if not math.isfinite(mean):
        return "–"
    text = _fmt(mean, digits)
    sd, lo, hi, n = row[f"{metric}_sd"], row[f"{metric}_lo"], row[f"{metric}_hi"], row["n_seeds"]
    use_sd = spread == "sd" or (spread == "auto" and n > 1)
    use_ci = spread == "ci" or (spread == "auto" and n <= 1)
    if use_sd and math.isfinite(sd):
        return f"{text} ± {_fmt(sd, digits)}"
    if use_ci and math.isfinite(lo) and math.isfinite(hi):
        return f"{text} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
    return text


def paper_tables(
    results: pd.DataFrame | str | os.PathLike,
    *,
    metrics: Sequence[str] = ("uar", "dsp", "deo_max"),
    spread: Spread = "auto",
    digits: int = 3,
) -> list[TableBlock]:
    """Aggregate results over seeds into formatted blocks (the data of :func:`table_markdown`).

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table (see :mod:`fairser.report`).
    metrics : sequence of str, default ("uar", "dsp", "deo_max")
        Metrics shown under each emotion, keys of :data:`METRIC_HEADERS`.
    spread : {"auto", "sd", "ci", "none"}, default "auto"
        What follows each mean: "sd" the standard deviation over seeds (``± s``), "ci" the
        mean of the runs' bootstrap interval bounds (``[lo, hi]``), "auto" sd with several
        seeds and the interval with one, "none" nothing.
    digits : int, default 3
        Decimals.

    Returns
    -------
    list of TableBlock
        One per corpus (and target / condition when those vary), source blocks first.
    """
    _check_options(metrics, spread)
    df = read_results(results, need=metrics)
    emotions = list(dict.fromkeys(df["emotion"]))
    ranks = method_rank(df["method"])
    blocks = []
    for values, part in ordered_blocks(df):
        agg = aggregate(part, by=["method", "sweep", "emotion"], metrics=metrics)
        sweeps = {s: i for i, s in enumerate(dict.fromkeys(part["sweep"]))}
        keys = sorted(
            {(m, s) for m, s in zip(agg["method"], agg["sweep"], strict=True)},
            key=lambda k: (ranks[k[0]], sweeps[k[1]]),
        )
        block_emotions = [e for e in emotions if e in set(agg["emotion"])]
        columns = [(e, m) for e in block_emotions for m in metrics]
        index = {(r.method, r.sweep, r.emotion): r for r in agg.itertuples(index=False)}
        best_values = {}
        for e, m in columns:
            vals = [
                getattr(index[(k[0], k[1], e)], m)
                for k in keys
                if (k[0], k[1], e) in index and math.isfinite(getattr(index[(k[0], k[1], e)], m))
            ]
            if vals and METRIC_HEADERS[m][1] != "chance":
                best_values[(e, m)] = max(vals) if METRIC_HEADERS[m][1] == "higher" else min(vals)
        rows, best = [], []
        for method, sweep in keys:
            cells, flags = [], []
            for e, m in columns:
                rec = index.get((method, sweep, e))
                if rec is None:
                    cells.append("–")
                    flags.append(False)
                    continue
                series = pd.Series(rec._asdict())
                cells.append(_cell(series, m, spread=spread, digits=digits))
                target = best_values.get((e, m))
                flags.append(
                    target is not None
                    and len(keys) > 1
                    and math.isfinite(series[m])
                    and round(series[m], digits) == round(target, digits)
                )
            rows.append((method_label(method, sweep), cells))
            best.append(flags)
        blocks.append(TableBlock(title=block_title(values), columns=columns, rows=rows, best=best))
    return blocks


def _legend(df: pd.DataFrame, metrics: Sequence[str], spread: str) -> str:
    seeds = df["seed"].nunique()
    conf = None
    if (
        "confidence" in df.columns
        and pd.to_numeric(df["confidence"], errors="coerce").notna().any()
    ):
        conf = float(pd.to_numeric(df["confidence"], errors="coerce").dropna().iloc[0])
    parts = [f"Mean over {seeds} seed{'s' if seeds != 1 else ''}"]
    if spread in ("auto", "sd") and (spread == "sd" or seeds > 1):
        parts.append("± is the standard deviation over seeds")
    if spread == "ci" or (spread == "auto" and seeds <= 1):
        level = f"{conf:.0%} " if conf else ""
        parts.append(f"[lo, hi] is the speaker-bootstrap {level}interval")
    defs = {
        "uar": "UAR: unweighted average recall (higher is better)",
        "dsp": "dSP = |P(ŷ=1|M) − P(ŷ=1|F)|",
        "deo_max": "dEO = max(|ΔTPR|, |ΔFPR|)",
        "deo_sum": "dEO(sum) = |ΔTPR| + |ΔFPR|",
    }
    shown = [defs[m] for m in metrics if m in defs]
    text = "; ".join(parts) + ". " + "; ".join(shown)
    if any(METRIC_HEADERS[m][1] == "lower" for m in metrics):
        text += " (gaps: lower is fairer)"
    return text + ". Bold: best in its column."


def table_markdown(
    results: pd.DataFrame | str | os.PathLike,
    *,
    metrics: Sequence[str] = ("uar", "dsp", "deo_max"),
    spread: Spread = "auto",
    digits: int = 3,
    heading_level: int = 3,
) -> str:
    """The paper's table in Markdown: one block per corpus, methods as rows, emotions as columns.

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table (see :mod:`fairser.report`).
    metrics : sequence of str, default ("uar", "dsp", "deo_max")
        Metrics under each emotion.
    spread : {"auto", "sd", "ci", "none"}, default "auto"
        See :func:`paper_tables`.
    digits : int, default 3
        Decimals.
    heading_level : int, default 3
        Markdown heading level of each block title.

    Returns
    -------
    str
        Markdown text: a legend line, then per block a heading and a pipe table.
    """
    _check_options(metrics, spread)
    df = read_results(results, need=metrics)
    blocks = paper_tables(df, metrics=metrics, spread=spread, digits=digits)
    out = [_legend(df, metrics, spread), ""]
    for block in blocks:
        out.append(f"{'#' * heading_level} {block.title}")
        out.append("")
        header = ["Method"] + [f"{e} {METRIC_HEADERS[m][0]}" for e, m in block.columns]
        out.append("| " + " | ".join(_md(h) for h in header) + " |")
        out.append("|" + "|".join([":---"] + ["---:"] * len(block.columns)) + "|")
        for (label, cells), flags in zip(block.rows, block.best, strict=True):
            shown = [f"**{c}**" if f else c for c, f in zip(cells, flags, strict=True)]
            out.append("| " + " | ".join([_md(label), *shown]) + " |")
        out.append("")
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def table_html(
    results: pd.DataFrame | str | os.PathLike,
    *,
    metrics: Sequence[str] = ("uar", "dsp", "deo_max"),
    spread: Spread = "auto",
    digits: int = 3,
) -> str:
    """The paper's table as an HTML fragment, emotions as spanning column headers.

    Parameters
    ----------
    results, metrics, spread, digits
        As in :func:`table_markdown`.

    Returns
    -------
    str
        HTML: a legend paragraph, then per block an ``<h3>`` and a ``<table class="paper">``.
    """
    _check_options(metrics, spread)
    df = read_results(results, need=metrics)
    blocks = paper_tables(df, metrics=metrics, spread=spread, digits=digits)
    return _blocks_html(
        blocks, _legend(df, metrics, spread), lambda m: METRIC_HEADERS[m][0]
    )


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
        sweeps = {s: i for i, s in enumerate(dict.fromkeys(part["sweep"]))}
        keys = sorted(
            dict.fromkeys(zip(part["method"], part["sweep"], strict=True)),
            key=lambda k: (ranks[k[0]], sweeps[k[1]]),
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
    out = [legend, ""]
    for block in blocks:
        out += [f"{'#' * heading_level} {block.title}", ""]
        header = ["Method"] + [f"{e} Δ{METRIC_HEADERS.get(m, (m,))[0]}" for e, m in block.columns]
        out.append("| " + " | ".join(_md(h) for h in header) + " |")
        out.append("|" + "|".join([":---"] + ["---:"] * len(block.columns)) + "|")
        for label, cells in block.rows:
            out.append("| " + " | ".join([_md(label), *cells]) + " |")
        out.append("")
    return "\n".join(out)


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
    return _blocks_html(blocks, legend, lambda m: "Δ" + METRIC_HEADERS.get(m, (m,))[0])


def _blocks_html(blocks, legend: str, header) -> str:
    """Render table blocks as HTML: a legend paragraph, then an ``<h3>`` and a table per block.

    ``header(metric)`` gives the (unescaped) column header of a metric.
    """
    esc = html.escape
    out = [f'<p class="legend">{esc(legend)}</p>']
    for block in blocks:
        emotions = list(dict.fromkeys(e for e, _ in block.columns))
        per = len(block.columns) // max(len(emotions), 1)
        out.append(f"<h3>{esc(block.title)}</h3>")
        out.append('<table class="paper"><thead><tr><th rowspan="2">Method</th>')
        out += [f'<th colspan="{per}">{esc(e)}</th>' for e in emotions]
        out.append("</tr><tr>")
        out += [f"<th>{esc(header(m))}</th>" for _, m in block.columns]
        out.append("</tr></thead><tbody>")
        for (label, cells), flags in zip(block.rows, block.best, strict=True):
            tds = "".join(
                f'<td class="best">{esc(c)}</td>' if f else f"<td>{esc(c)}</td>"
                for c, f in zip(cells, flags, strict=True)
            )
            out.append(f"<tr><th>{esc(label)}</th>{tds}</tr>")
        out.append("</tbody></table>")
    return "\n".join(out)
