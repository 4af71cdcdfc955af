"""A self-contained HTML report: the paper table, failed runs, the figures, gender detection
and metadata. Failed runs are listed with their reasons and left out of every mean and figure;
undefined values read "n/a" with the reason in the cell's title and a note under the table.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fairser.report._order import block_title, method_label, method_rank, ordered_blocks
from fairser.report._results import (
    NOTE_SUFFIX,
    aggregate,
    atomic_write_bytes,
    ok_rows,
    read_results,
)
from fairser.report.comparison import comparison_html
from fairser.report.embeddings import plot_embeddings
from fairser.report.failures import failed_html
from fairser.report.nulls import gap_null_html
from fairser.report.plots import plot_fairness_gap, plot_fairness_vs_uar, plot_recall_by_gender
from fairser.report.table import table_html
from fairser.report.tradeoff import has_tradeoff, plot_pareto

__all__ = ["FIGURES", "write_report"]

#: File name (under ``figures/``), title and reading guide of every figure the report can hold.
FIGURES: dict[str, tuple[str, str]] = {
    "fairness_vs_uar.png": (
        "Fairness against accuracy",
        "Each point is a method (colour) on one emotion task (marker). Up is more accurate, "
        "left is fairer; hollow markers are sweep points.",
    ),
    "recall_by_gender.png": (
        "Recall per gender",
        "UAR computed within the male and within the female speakers. Unequal bars mean one "
        "gender's emotions are recognised better.",
    ),
    "fairness_gap.png": (
        "Source against target fairness",
        "Circles: the gap on the source test set; squares: on the target corpus. A method "
        "that closes the gap on the source but not on the target is the paper's warning.",
    ),
    "embeddings.png": (
        "Embedding projection",
        "2-D PCA of the model's embeddings. Colours that separate by gender mean gender is "
        "still readable; separation by corpus means the domains are not aligned.",
    ),
    "pareto.png": (
        "Trade-off and Pareto front",
        "Target UAR against dSP (left) and dEO (right): each point is one configuration (method "
        "or method variant, and sweep point), the mean over seeds and emotions with seed error "
        "bars. Bold points joined by the dashed line are the Pareto front: no other "
        "configuration is both more accurate and fairer.",
    ),
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
thead th{background:#f3f3f3;text-align:center}tbody th{text-align:left;background:#fafafa}
td.best{font-weight:700;background:#eef6ee}td.na{color:#8a1c1c;background:#fbf1f1}
ul.notes,ul.failed{font-size:.85rem;color:#555;margin-top:-.6rem}ul.failed{color:#8a1c1c}.legend,.muted{color:#555;font-size:.9rem}
figure{margin:1rem 0 2rem}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#444;font-size:.9rem;margin-top:.3rem}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;font-size:.9rem}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;font-family:ui-monospace,monospace;
white-space:pre-wrap;word-break:break-all}
details{margin:1rem 0}.scroll{overflow-x:auto}
"""


def _meta_html(meta: Mapping[str, Any]) -> str:
    rows = []
    for key, value in meta.items():
        if isinstance(value, Mapping | list | tuple):
            text = json.dumps(value, indent=1, default=str, ensure_ascii=False)
        else:
            text = str(value)
        rows.append(f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(text)}</dd>")
    return '<dl class="meta">' + "".join(rows) + "</dl>"


#: Gender-detection columns and their headers, in display order.
DETECTION: dict[str, str] = {
    "gc_acc": "own gender head (balanced acc.)",
    "probe": "linear probe on embeddings",
    "probe_mlp": "MLP probe on embeddings",
    "probe_input": "probe on input features",
}


def _value_cell(row: pd.Series, col: str) -> str:
    """One table cell: the value, "n/a" with its reason as title, or a dash."""
    value = row[col]
    if math.isfinite(value):
        return f"<td>{value:.3f}</td>"
    note = row.get(f"{col}{NOTE_SUFFIX}", "")
    if note:
        return f'<td class="na" title="{html.escape(note)}">n/a</td>'
    return "<td>–</td>"


def _detection_html(df: pd.DataFrame) -> str:
    cols = [c for c in DETECTION if c in df.columns]
    df = ok_rows(df)
    if not cols or df.empty:
        return '<p class="muted">No gender-detection columns in the results.</p>'
    names = DETECTION
    ranks = method_rank(df["method"])
    crossed = set()
    if "probe_protocol" in df.columns:
        hit = df["probe_protocol"].astype("string").fillna("") == "cross-fitted"
        crossed = set(zip(df.loc[hit, "method"], df.loc[hit, "sweep"], strict=True))
    out = [
        '<p class="legend">Mean over emotions and seeds of balanced accuracy; 0.5 is chance '
        "(gender not recoverable), – means not applicable (no gender head) or not measured, "
        "n/a undefined (hover for the reason)."
        + (" * probes cross-fitted through the model's embedding eraser: in each probe fold "
           "it is refitted without the held-out speakers and without the speakers the probe "
           "trains on, genders weighted equally (probing the rows an eraser was fitted on "
           "scores far below 0.5, an artefact)."
           if crossed else "")
        + "</p>"
    ]
    for values, part in ordered_blocks(df):
        agg = aggregate(part, by=["method", "sweep"], metrics=cols)
        agg = agg.assign(_r=[ranks[m] for m in agg["method"]]).sort_values("_r", kind="stable")
        out.append(
            f"<h3>{html.escape(block_title(values))}</h3><table><thead><tr>"
            "<th>Method</th>"
            + "".join(f"<th>{names[c]}</th>" for c in cols)
            + "</tr></thead><tbody>"
        )
        for _, row in agg.iterrows():
            cells = "".join(_value_cell(row, c) for c in cols)
            label = html.escape(method_label(row["method"], row["sweep"]))
            if (row["method"], row["sweep"]) in crossed:
                label += " *"
            out.append(f"<tr><th>{label}</th>{cells}</tr>")
        out.append("</tbody></table>")
    return "\n".join(out)


def _figure_html(name: str, png: bytes) -> str:
    title, guide = FIGURES[name]
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="{name[:-4]}"><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}"><figcaption><b>{html.escape(title)}.</b> '
        f'{html.escape(guide)} <a href="figures/{name}">figures/{name}</a></figcaption></figure>'
    )


def _target_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the deployment corpora (all rows when there is no ``role`` column)."""
    return table[table["role"] == "target"] if "role" in table.columns else table


def write_report(
    results: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    embeddings: Mapping[str, Mapping[str, Any]] | None = None,
    title: str = "fairser report",
    meta: Mapping[str, Any] | None = None,
    comparisons: pd.DataFrame | None = None,
    gap_nulls: pd.DataFrame | None = None,
    progress: bool = False,
) -> Path:
    """Write ``report.html`` and its PNG figures (``figures/*.png``) into ``out_dir``.

    The HTML is self-contained (figures embedded as base64, no scripts, no external
    resources), so it reads offline and can be mailed as one file; the PNGs are also written
    next to it for papers and slides. Figures that do not apply are left out: the source-vs-
    target plot needs both roles, the projection needs ``embeddings``, the Pareto plot needs a
    sweep.

    Parameters
    ----------
    results : pandas.DataFrame or path
        Results table, one row per run and evaluated corpus (see :mod:`fairser.report`).
    out_dir : path
        Folder to write into (created if missing).
    embeddings : mapping of str to mapping, optional
        Title (e.g. method) to ``{"embeddings": (n, E), "gender": (n,), "corpus": (n,)}``
        for the projection figure.
    title : str, default "fairser report"
        Page title.
    meta : mapping, optional
        Run metadata shown as a list (command, versions, seeds, wall time, ...); nested
        values are shown as JSON.
    comparisons : pandas.DataFrame, optional
        Paired tests against a baseline (:func:`fairser.metrics.compare_methods`), shown as
        their own section after the results table.
    gap_nulls : pandas.DataFrame, optional
        Gaps against speaker reassignments and a group-blind classifier
        (:func:`fairser.metrics.gap_nulls`), shown after the paired tests; only the target
        rows when the table has a ``role`` column.
    progress : bool, default False
        Show a progress bar while drawing the figures.

    Returns
    -------
    pathlib.Path
        Path of ``report.html``.

    Raises
    ------
    ReportError
        If the results miss a required column or the embeddings are malformed.
    """
    df = read_results(results, need=["uar", "uar_m", "uar_f", "dsp", "deo_max"])
    out = Path(out_dir)
    figures = out / "figures"
    good = ok_rows(df)
    jobs: list[tuple[str, Callable[[Path], Path]]] = []
    if not good.empty:
        jobs.append(("fairness_vs_uar.png", lambda p: plot_fairness_vs_uar(df, p)))
        jobs.append(("recall_by_gender.png", lambda p: plot_recall_by_gender(df, p)))
    if {"source", "target"} <= set(good["role"]):
        jobs.append(("fairness_gap.png", lambda p: plot_fairness_gap(df, p)))
    if embeddings:
        rank = method_rank(list(embeddings))
        ordered = {k: embeddings[k] for k in sorted(embeddings, key=rank.__getitem__)}
        jobs.append(("embeddings.png", lambda p: plot_embeddings(ordered, p)))
    if has_tradeoff(df) and (good["role"] == "target").any():
        jobs.append(("pareto.png", lambda p: plot_pareto(df, p)))
    pngs: dict[str, bytes] = {}
    with Progress(
        TextColumn("[bold]report[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("figures", total=len(jobs))
        for name, job in jobs:
            bar.update(task, description=name)
            pngs[name] = job(figures / name).read_bytes()
            bar.advance(task)
    info = {
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "rows": len(df),
        "failed rows": int((df["status"] != "ok").sum()),
        "methods": ", ".join(dict.fromkeys(df["method"])),
        "emotions": ", ".join(dict.fromkeys(df["emotion"])),
        "seeds": ", ".join(str(s) for s in sorted(df["seed"].unique())),
    }
    info.update(dict(meta or {}))
    full = df.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.4f}", border=0)
    esc = html.escape
    body = [
        f"<h1>{esc(title)}</h1>",
        '<p class="muted">Speech emotion recognition, gender fairness across corpora. '
        "UAR: unweighted average recall. dSP: gap in positive-prediction rate between male "
        "and female speakers. dEO: equalized odds gap, max(|ΔTPR|, |ΔFPR|).</p>",
        '<nav class="muted">'
        + " · ".join(f'<a href="#{n[:-4]}">{esc(FIGURES[n][0])}</a>' for n in pngs)
        + "</nav>",
        "<h2>Results</h2>",
        '<div class="scroll">',
        table_html(df),
        "</div>",
        *(
            [
                '<h2 id="paired">Paired tests</h2>',
                '<div class="scroll">',
                comparison_html(comparisons),
                "</div>",
            ]
            if comparisons is not None and len(comparisons)
            else []
        ),
        *(
            [
                '<h2 id="gaps">Are the gaps about gender?</h2>',
                '<div class="scroll">',
                gap_null_html(_target_rows(gap_nulls)),
                "</div>",
            ]
            if gap_nulls is not None and len(_target_rows(gap_nulls))
            else []
        ),
        *(['<h2 id="failed">Failed runs</h2>', failed_html(df)] if failed_html(df) else []),
        "<h2>Figures</h2>",
        *(_figure_html(n, png) for n, png in pngs.items()),
        *(['<p class="muted">No figures: no run succeeded.</p>'] if not pngs else []),
        "<h2>Gender detection</h2>",
        _detection_html(df),
        "<h2>Run</h2>",
        _meta_html(info),
        "<details><summary>All result rows</summary>",
        f'<div class="scroll">{full}</div>',
        "</details>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return atomic_write_bytes(out / "report.html", page.encode("utf-8"))
