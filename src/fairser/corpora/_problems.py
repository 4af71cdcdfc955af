"""Problems found while scanning a corpus, the scan result, and their one-line summary.

A :class:`Problem` is one thing wrong with one utterance or one file (an unknown code, a
missing or damaged audio file, a file the scan skipped and why). :class:`CorpusScan` carries
the manifest of the good rows, the problems (the rows left out) and what was resolved on
request (e.g. a speaker's gender set to the majority of its rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fairser.audio import AUDIO_PROBLEMS
from fairser.errors import CorpusError

__all__ = [
    "CorpusScan",
    "PROBLEM_COLUMNS",
    "PROBLEM_KINDS",
    "Problem",
    "RESOLVED_COLUMNS",
    "describe_problems",
    "problems_frame",
    "resolved_frame",
]

#: Columns of the problems table (``CorpusScan.problems``, the ``--skip-bad`` CSV).
PROBLEM_COLUMNS: tuple[str, ...] = ("kind", "path", "source", "line", "utt_id", "code", "reason")

#: Problem kinds, in the order they are reported.
PROBLEM_KINDS: tuple[str, ...] = (
    "unknown-emotion", "unknown-gender", "unknown-split", "bad-name", "bad-row",
    "unreadable-folder", *AUDIO_PROBLEMS, "duplicate", "gender-conflict",
)

#: Columns of the table of values resolved on request (``CorpusScan.resolved``).
RESOLVED_COLUMNS: tuple[str, ...] = ("utt_id", "path", "source", "line", "column", "value",
                                     "resolved", "reason")

_LIST_PER_GROUP = 5


@dataclass(frozen=True)
class Problem:
    """Something wrong with one utterance (or one file an adapter could not parse).

    Attributes
    ----------
    kind : str
        One of :data:`PROBLEM_KINDS`.
    path : str
        Audio file (or folder, or label table) concerned.
    reason : str
        What is wrong and how to fix it.
    source : str or None
        Label file, when the row came from one.
    line : int or None
        Line of ``source``.
    utt_id : str or None
        Utterance id when known.
    code : str or None
        The offending value (unknown emotion code, gender spelling, speaker...), if any.
    """

    kind: str
    path: str
    reason: str
    source: str | None = None
    line: int | None = None
    utt_id: str | None = None
    code: str | None = None


def resolved_frame(rows: Sequence[dict] = ()) -> pd.DataFrame:
    """Return resolved values (dicts with :data:`RESOLVED_COLUMNS` keys) as a typed table."""
    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in rows], dtype="Int64" if c == "line" else "string")
         for c in RESOLVED_COLUMNS},
        columns=list(RESOLVED_COLUMNS),
    )


@dataclass(frozen=True)
class CorpusScan:
    """A manifest of the good rows plus every problem found.

    Attributes
    ----------
    manifest : pandas.DataFrame
        Validated manifest of the rows without problems.
    problems : pandas.DataFrame
        One row per problem, columns :data:`PROBLEM_COLUMNS`; its rows are the skipped ones.
    spec : str
        The ``KIND:ROOT`` spec scanned.
    resolved : pandas.DataFrame
        Values changed on request (columns :data:`RESOLVED_COLUMNS`): the row kept, the
        column, its value in the corpus, the value used and why.
    audio_check : bool
        Whether the samples were checked (silent, clipped, out of range, truncated), not only
        the headers.
    """

    manifest: pd.DataFrame
    problems: pd.DataFrame
    spec: str
    resolved: pd.DataFrame = field(default_factory=resolved_frame)
    audio_check: bool = False

    def raise_for_problems(self) -> None:
        """Raise one :class:`CorpusError` summarising every problem, if there is any."""
        if len(self.problems):
            raise CorpusError(describe_problems(self.problems, spec=self.spec))


def problems_frame(problems: Sequence[Problem]) -> pd.DataFrame:
    """Return the problems as a DataFrame with :data:`PROBLEM_COLUMNS` (kinds in report order)."""
    order = {k: i for i, k in enumerate(PROBLEM_KINDS)}
    items = sorted(problems, key=lambda p: (order.get(p.kind, len(order)), p.path,
                                            p.line or 0))
    return pd.DataFrame(
        {
            "kind": pd.Series([p.kind for p in items], dtype="string"),
            "path": pd.Series([p.path for p in items], dtype="string"),
            "source": pd.Series([p.source for p in items], dtype="string"),
            "line": pd.Series([p.line for p in items], dtype="Int64"),
            "utt_id": pd.Series([p.utt_id for p in items], dtype="string"),
            "code": pd.Series([p.code for p in items], dtype="string"),
            "reason": pd.Series([p.reason for p in items], dtype="string"),
        },
        columns=list(PROBLEM_COLUMNS),
    )


def _where(row: pd.Series) -> str:
    name = Path(str(row["path"])).name
    if pd.notna(row["source"]) and pd.notna(row["line"]):
        return f"{Path(str(row['source'])).name} line {int(row['line'])} ({name})"
    return name


def _listing(where: list[str]) -> str:
    shown = ", ".join(where[:_LIST_PER_GROUP])
    extra = len(where) - _LIST_PER_GROUP
    return f"{shown} and {extra} more" if extra > 0 else shown


def describe_problems(problems: pd.DataFrame, *, spec: str) -> str:
    """Summarise a problems table as one line: every kind, every offending code, the rows.

    Each kind is listed with its fix; codes (unknown emotion codes, gender spellings, ...) are
    listed one by one with the files holding them (the first few, then a count).
    """
    parts: list[str] = []
    for kind, group in problems.groupby("kind", sort=False):
        first = str(group["reason"].iloc[0])
        if group["code"].notna().all() and kind != "duplicate":
            hint = first.split("; ", 1)[-1]
            listed = [f"{code!r} in {_listing([_where(r) for _, r in rows.iterrows()])}"
                      for code, rows in group.groupby("code", sort=False)]
            parts.append(f"{kind} {'; '.join(listed)} ({hint})")
        else:
            where = [_where(r) for _, r in group.iterrows()]
            parts.append(f"{kind} in {_listing(where)} ({first})")
    return (f"{spec}: {len(problems)} problem(s): " + "; ".join(parts)
            + f"; fix them, or run `fairser corpus inspect {spec} --skip-bad` to skip these rows")
