"""The paper's table: methods as rows, emotions as columns, UAR / dSP / dEO, a block per corpus.

Cells are means over the successful runs' seeds. A value undefined on the data reads "n/a"
with its reason as a footnote; a cell whose runs all failed reads "failed", and one where some
failed carries a footnote naming them; neither is ever bolded as best. Failed runs are also
listed after the tables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from fairser.report._order import block_title, method_label, method_rank, ordered_blocks
from fairser.report._render import (
    Footnotes,
    TableBlock,
    blocks_html,
    blocks_markdown,
    md_escape,
)
from fairser.report._results import (
    NOTE_SUFFIX,
    ReportError,
    aggregate,
    failed_rows,
    ok_rows,
    read_results,
)
from fairser.report.failures import failed_lines, failure_note

__all__ = [
    "METRIC_HEADERS",
    "TableBlock",
    "m_header",
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
    "probe_mlp": ("probe(MLP)", "chance"),
    "probe_input": ("probe(input)", "chance"),
}

Spread = Literal["auto", "sd", "ci", "none"]
_RUN_COLUMNS = ["method", "sweep", "emotion"]


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
        return "n/a" if row[f"{metric}{NOTE_SUFFIX}"] else "–"
    text = _fmt(mean, digits)
    sd, lo, hi, n = row[f"{metric}_sd"], row[f"{metric}_lo"], row[f"{metric}_hi"], row["n_seeds"]
    use_sd = spread == "sd" or (spread == "auto" and n > 1)
    use_ci = spread == "ci" or (spread == "auto" and n <= 1)
    if use_sd and math.isfinite(sd):
        return f"{text} ± {_fmt(sd, digits)}"
    if use_ci and math.isfinite(lo) and math.isfinite(hi):
        return f"{text} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
    return text


def _best_values(index: dict, keys: list, columns: list) -> dict:
    best = {}
    for e, m in columns:
        vals = [
            getattr(index[(*k, e)], m)
            for k in keys
            if (*k, e) in index and math.isfinite(getattr(index[(*k, e)], m))
        ]
        if vals and METRIC_HEADERS[m][1] != "chance":
            best[(e, m)] = max(vals) if METRIC_HEADERS[m][1] == "higher" else min(vals)
    return best


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
        One per corpus (and target / condition when those vary), source blocks first, with
        footnotes numbered across the blocks.
    """
    _check_options(metrics, spread)
    df = read_results(results, need=metrics)
    shown = df[df["corpus"] != ""]  # failed rows without a corpus are only listed
    emotions = list(dict.fromkeys(shown["emotion"]))
    ranks = method_rank(shown["method"])
    notes = Footnotes()
    blocks = []
    for values, part in ordered_blocks(shown):
        good = ok_rows(part)
        bad = failed_rows(part)
        bad = bad[~bad["superseded"]]
        agg = aggregate(good, by=_RUN_COLUMNS, metrics=metrics) if len(good) else None
        keys = sorted(
            dict.fromkeys(zip(part["method"], part["sweep"], strict=True)),
            key=lambda k: ranks[k[0]],  # stable: each method's sweep points as they appear
        )
        block_emotions = [e for e in emotions if e in set(part["emotion"])]
        columns = [(e, m) for e in block_emotions for m in metrics]
        index = {} if agg is None else {(r.method, r.sweep, r.emotion): r for r in agg.itertuples()}
        best_values = _best_values(index, keys, columns)
        failed = {k: rows for k, rows in bad.groupby(_RUN_COLUMNS, sort=False)}
        rows, best, marks, label_marks, used = [], [], [], [], {}
        for method, sweep in keys:
            cells, flags, row_marks = [], [], []
            for e, m in columns:
                rec = index.get((method, sweep, e))
                fails = failed.get((method, sweep, e))
                texts = []
                if rec is None:
                    cells.append("failed" if fails is not None else "–")
                    flags.append(False)
                else:
                    series = pd.Series(rec._asdict())
                    cells.append(_cell(series, m, spread=spread, digits=digits))
                    if series[f"{m}{NOTE_SUFFIX}"]:
                        texts.append(f"{m_header(m)}: {series[f'{m}{NOTE_SUFFIX}']}")
                    target = best_values.get((e, m))
                    flags.append(
                        target is not None
                        and len(keys) > 1
                        and math.isfinite(series[m])
                        and round(series[m], digits) == round(target, digits)
                    )
                if fails is not None:
                    texts.append(failure_note(fails, 0 if rec is None else int(rec.n_seeds)))
                numbers = tuple(notes.add(t) for t in texts)
                used.update({n: t for n, t in zip(numbers, texts, strict=True)})
                row_marks.append(numbers)
            common = set.intersection(*(set(m) for m in row_marks)) if row_marks else set()
            label_marks.append(tuple(sorted(common)))
            rows.append((method_label(method, sweep), cells))
            best.append(flags)
            marks.append([tuple(n for n in m if n not in common) for m in row_marks])
        blocks.append(
            TableBlock(
                title=block_title(values),
                columns=columns,
                rows=rows,
                best=best,
                marks=marks,
                notes=dict(sorted(used.items())),
                label_marks=label_marks,
            )
        )
    return blocks


def m_header(metric: str) -> str:
    """Column header of a metric (its name when unknown)."""
    return METRIC_HEADERS.get(metric, (metric,))[0]


def _legend(df: pd.DataFrame, metrics: Sequence[str], spread: str, blocks: list) -> str:
    good = ok_rows(df)
    seeds = good["seed"].nunique()
    conf = None
    if (
        "confidence" in good.columns
        and pd.to_numeric(good["confidence"], errors="coerce").notna().any()
    ):
        conf = float(pd.to_numeric(good["confidence"], errors="coerce").dropna().iloc[0])
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
    text += ". Bold: best in its column."
    multi = _multiclass_text(good)
    if multi:
        text += " " + multi
    cells = {c for b in blocks for _, row in b.rows for c in row}
    if "n/a" in cells:
        text += " n/a: undefined on this data (the note says why), never a number."
    bad = failed_rows(df)
    if (~bad["superseded"]).any():
        text += " Failed runs are left out of every mean (see Failed runs)."
    return text


def _multiclass_text(df: pd.DataFrame) -> str:
    """Legend sentence for multi-class rows (``task == "multiclass"`` or emotion ``all``)."""
    if "task" in df.columns:
        multi = df[df["task"].astype(str) == "multiclass"]
    else:
        multi = df[df["emotion"] == "all"]
    if multi.empty:
        return ""
    how = "macro"
    if "class_average" in multi.columns:
        found = [str(v) for v in multi["class_average"].dropna().unique() if str(v)]
        how = "/".join(found) or how
    what = {"macro": "the mean over classes", "max": "the worst class"}.get(how, how)
    return (
        f"Multi-class rows ({', '.join(dict.fromkeys(multi['emotion']))}): UAR over all classes; "
        f"dSP and dEO are one-vs-rest per class, reduced by {what} ({how})."
    )


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
        Markdown text: a legend line, then per block a heading, a pipe table and its footnotes
        (``[^n]: reason``), then a "Failed runs" list when a run failed.
    """
    _check_options(metrics, spread)
    df = read_results(results, need=metrics)
    blocks = paper_tables(df, metrics=metrics, spread=spread, digits=digits)
    text = blocks_markdown(
        blocks,
        _legend(df, metrics, spread, blocks),
        lambda e, m: f"{e} {m_header(m)}",
        heading_level,
    )
    lines = failed_lines(df)
    if lines:
        text += f"\n{'#' * heading_level} Failed runs\n\n"
        text += "\n".join(f"- {md_escape(line)}" for line in lines) + "\n"
    return text


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
        HTML: a legend paragraph, then per block an ``<h3>``, a ``<table class="paper">`` and
        its notes (``<ul class="notes">``); "n/a" cells carry their reason as a ``title``.
    """
    _check_options(metrics, spread)
    df = read_results(results, need=metrics)
    blocks = paper_tables(df, metrics=metrics, spread=spread, digits=digits)
    return blocks_html(blocks, _legend(df, metrics, spread, blocks), m_header)
