"""Failed runs: what a cell's footnote says about them and the list the report shows.

A run whose ``status`` is not ``ok`` failed (see :mod:`fairser.report._results`); its rows are
left out of every mean. Cells say how many of their runs failed and why; the list names each
failed run once (not once per evaluated corpus), marking failures a later rerun superseded.
"""

from __future__ import annotations

import html
import os

import pandas as pd

from fairser.report._order import method_label
from fairser.report._results import failed_rows, read_results

__all__ = ["failed_html", "failed_lines", "failed_runs", "failure_note"]


def _reason(rows: pd.DataFrame) -> str:
    texts = [
        r if r else f"status {s!r}" for r, s in zip(rows["reason"], rows["status"], strict=True)
    ]
    return "; ".join(dict.fromkeys(texts))


def failure_note(bad: pd.DataFrame, n_ok: int) -> str:
    """Footnote of a cell some or all of whose runs failed."""
    k = int(bad["seed"].nunique(dropna=False))
    seeds = ", ".join(str(s) for s in dict.fromkeys(bad["seed"]))
    if n_ok == 0:
        runs = "the run failed" if k == 1 else f"all {k} runs failed"
        return f"{runs} (seed {seeds}): {_reason(bad)}"
    return (
        f"{k} of {k + n_ok} runs failed (seed {seeds}): {_reason(bad)}; the mean is over the "
        f"other {n_ok}"
    )


def failed_runs(results: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """The failed runs of a results table, one row per run (not per evaluated corpus).

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``sweep``, ``emotion``, ``seed``, ``target``, ``condition``,
        ``status``, ``reason`` and ``superseded`` (a successful rerun exists); empty when no
        run failed.
    """
    df = read_results(results)
    bad = failed_rows(df)
    cols = ["method", "sweep", "emotion", "seed", "target", "condition", "status", "reason"]
    if bad.empty:
        return pd.DataFrame(columns=[*cols, "superseded"])
    out = bad.groupby(cols, sort=False, dropna=False)["superseded"].all().reset_index()
    return out


def failed_lines(df: pd.DataFrame) -> list[str]:
    runs = failed_runs(df)
    lines = []
    for r in runs.itertuples(index=False):
        where = ", ".join(str(v) for v in (r.emotion, f"seed {r.seed}", r.target, r.condition) if v)
        why = r.reason or f"status {r.status!r}"
        later = " (a later rerun succeeded)" if r.superseded else ""
        lines.append(f"{method_label(r.method, r.sweep)}, {where}: {why}{later}")
    return lines


def failed_html(results: pd.DataFrame) -> str:
    """The failed runs as an HTML list ("" when none failed)."""
    lines = failed_lines(read_results(results))
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<ul class="failed">{items}</ul>'
