"""Formatted table blocks and their rendering to Markdown and HTML, footnotes included.

A table is a list of :class:`TableBlock` (one per corpus block), each already formatted: cell
texts, which cells are highlighted, and footnote numbers per cell. Footnotes carry what a cell
cannot: why a value is "n/a" (undefined on this data) or why runs behind it failed. Numbers
come from one :class:`Footnotes` per table, so a reason shared by many cells is one note.
Markdown uses GitHub footnotes (``n/a[^1]`` and ``[^1]: reason`` once, after the first block
that uses it); HTML puts the reason in the cell's ``title`` and lists the notes under each
block.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fairser.report._order import block_title, method_label, method_rank

__all__ = ["Footnotes", "TableBlock", "blocks_html", "blocks_markdown", "md_escape"]


class Footnotes:
    """Numbers distinct footnote texts in order of first use (1, 2, ...)."""

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}

    def add(self, text: str) -> int:
        """Number of ``text``, a new one if it is new."""
        return self.texts.setdefault(text, len(self.texts) + 1)

    def text(self, number: int) -> str:
        """The text of footnote ``number``."""
        return next(t for t, n in self.texts.items() if n == number)


@dataclass(frozen=True)
class TableBlock:
    """One block of a table, already formatted.

    Attributes
    ----------
    title : str
        Heading, e.g. ``casia (target)``.
    columns : list of (str, str)
        ``(emotion, metric)`` of each value column, in order.
    rows : list of (str, list of str)
        Row label and formatted cells (``n/a`` for an undefined value, ``failed`` where every
        run failed, ``–`` where nothing was measured).
    best : list of list of bool
        Whether each cell is highlighted (the best mean of its column, or a significant test).
    marks : list of list of tuple of int
        Footnote numbers of each cell (empty tuples when the table has no notes).
    notes : dict of int to str
        The footnotes the block's cells and row labels use, by number.
    label_marks : list of tuple of int
        Footnote numbers of each row label (a note that holds for every cell of the row).
    """

    title: str
    columns: list[tuple[str, str]]
    rows: list[tuple[str, list[str]]]
    best: list[list[bool]]
    marks: list[list[tuple[int, ...]]] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)
    label_marks: list[tuple[int, ...]] = field(default_factory=list)

    def cell_marks(self, r: int, c: int) -> tuple[int, ...]:
        """Footnote numbers of cell (r, c)."""
        return self.marks[r][c] if self.marks else ()

    def row_marks(self, r: int) -> tuple[int, ...]:
        """Footnote numbers of the label of row r."""
        return self.label_marks[r] if self.label_marks else ()


def md_escape(text: str) -> str:
    """Escape the pipe of Markdown tables."""
    return text.replace("|", "\\|")


def blocks_markdown(
    blocks: list[TableBlock], legend: str, header: Callable[[str, str], str], heading_level: int
) -> str:
    """Render blocks as Markdown: the legend, then per block a heading, a table and new notes.

    ``header(emotion, metric)`` gives a column header.
    """
    out = [legend, ""]
    defined: set[int] = set()
    for block in blocks:
        out += [f"{'#' * heading_level} {block.title}", ""]
        head = ["Method"] + [header(e, m) for e, m in block.columns]
        out.append("| " + " | ".join(md_escape(h) for h in head) + " |")
        out.append("|" + "|".join([":---"] + ["---:"] * len(block.columns)) + "|")
        for r, ((label, cells), flags) in enumerate(zip(block.rows, block.best, strict=True)):
            shown = []
            for c, (cell, flag) in enumerate(zip(cells, flags, strict=True)):
                text = f"**{cell}**" if flag else cell
                shown.append(text + "".join(f"[^{n}]" for n in block.cell_marks(r, c)))
            label = md_escape(label) + "".join(f"[^{n}]" for n in block.row_marks(r))
            out.append("| " + " | ".join([label, *shown]) + " |")
        out.append("")
        new = [n for n in sorted(block.notes) if n not in defined]
        if new:
            out += [f"[^{n}]: {md_escape(block.notes[n])}" for n in new]
            out.append("")
            defined.update(new)
    return "\n".join(out)


def blocks_html(blocks: list[TableBlock], legend: str, header: Callable[[str], str]) -> str:
    """Render blocks as HTML: a legend paragraph, then per block an ``<h3>``, a table, notes.

    ``header(metric)`` gives the (unescaped) column header of a metric; emotions span their
    metrics in a first header row.
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
        for r, ((label, cells), flags) in enumerate(zip(block.rows, block.best, strict=True)):
            tds = []
            for c, (cell, flag) in enumerate(zip(cells, flags, strict=True)):
                marks = block.cell_marks(r, c)
                classes = ["best"] if flag else []
                if cell in ("n/a", "failed"):
                    classes.append("na")
                attrs = f' class="{" ".join(classes)}"' if classes else ""
                if marks:
                    why = " / ".join(block.notes[n] for n in marks)
                    attrs += f' title="{esc(why)}"'
                sup = f"<sup>{','.join(str(n) for n in marks)}</sup>" if marks else ""
                tds.append(f"<td{attrs}>{esc(cell)}{sup}</td>")
            marks = block.row_marks(r)
            head = esc(label)
            if marks:
                why = esc(" / ".join(block.notes[n] for n in marks))
                head = f'<span title="{why}">{head}<sup>{",".join(map(str, marks))}</sup></span>'
            out.append(f"<tr><th>{head}</th>{''.join(tds)}</tr>")
        out.append("</tbody></table>")
        if block.notes:
            items = "".join(
                f"<li><sup>{n}</sup> {esc(block.notes[n])}</li>" for n in sorted(block.notes)
            )
            out.append(f'<ul class="notes">{items}</ul>')
    return "\n".join(out)


def method_blocks(
    df: pd.DataFrame,
    cell: Callable[[Any], tuple[str, bool] | None],
    *,
    title_suffix: Callable[[pd.DataFrame], str] | None = None,
) -> list[TableBlock]:
    """Blocks of a long per-method table (paired tests, gap tests): one block per corpus.

    ``df`` has ``method``, ``sweep``, ``metric``, optionally ``emotion`` and the block columns
    ``condition``, ``target``, ``role``, ``corpus``. Rows are methods (and sweep points) in
    display order, columns ``(emotion, metric)``; ``cell(record)`` formats one record as
    ``(text, highlighted)``, or None for "–". ``title_suffix(block_rows)`` is appended to a
    block's title.
    """
    df = df.copy()
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
        if title_suffix is not None:
            title += title_suffix(part)
        keys = sorted(
            dict.fromkeys(zip(part["method"], part["sweep"], strict=True)),
            key=lambda k: ranks[k[0]],  # stable: each method's sweep points as they appear
        )
        index = {(r.method, r.sweep, r.emotion, r.metric): r for r in part.itertuples(index=False)}
        columns = [(e, m) for e in emotions for m in metrics if e in set(part["emotion"])]
        rows, flags = [], []
        for method, sweep in keys:
            cells, marks = [], []
            for e, m in columns:
                rec = index.get((method, sweep, e, m))
                made = None if rec is None else cell(rec)
                cells.append("–" if made is None else made[0])
                marks.append(False if made is None else made[1])
            rows.append((method_label(method, sweep), cells))
            flags.append(marks)
        blocks.append(TableBlock(title=title, columns=columns, rows=rows, best=flags))
    return blocks


def plain_blocks(blocks: list[TableBlock]) -> list[TableBlock]:
    """The blocks without highlights (Markdown marks significance with stars instead)."""
    return [
        TableBlock(b.title, b.columns, b.rows, [[False] * len(f) for f in b.best]) for b in blocks
    ]
