"""Everything a corpus adapter needs, in one import.

An adapter only *scans*: it walks its folder or label file and yields :class:`RawUtterance`
records with the corpus's own codes plus :class:`Problem` records for what it could not parse
or skipped. :func:`build_manifest` does the rest the same way for every corpus. The pieces live
in their own modules, re-exported here:

- :mod:`fairser.corpora._adapter`: :class:`Adapter`, :class:`RawUtterance`;
- :mod:`fairser.corpora._options`: :class:`CorpusOptions`, :func:`parse_options`;
- :mod:`fairser.corpora._problems`: :class:`Problem`, :class:`CorpusScan`, the problems table;
- :mod:`fairser.corpora._files`: :func:`find_audio`, :func:`require_root`, label readers;
- :mod:`fairser.corpora._build`: :func:`build_manifest`;
- :mod:`fairser.corpora._splits`: :func:`assign_splits`.
"""

from __future__ import annotations

from fairser.corpora._adapter import Adapter, RawUtterance, ScanFn
from fairser.corpora._build import build_manifest
from fairser.corpora._files import (
    find_audio,
    list_audio,
    read_label_table,
    read_label_text,
    require_root,
)
from fairser.corpora._options import CorpusOptions, parse_options
from fairser.corpora._problems import (
    PROBLEM_COLUMNS,
    PROBLEM_KINDS,
    RESOLVED_COLUMNS,
    CorpusScan,
    Problem,
    describe_problems,
    problems_frame,
    resolved_frame,
)
from fairser.corpora._splits import assign_splits

__all__ = [
    "Adapter",
    "CorpusOptions",
    "CorpusScan",
    "PROBLEM_COLUMNS",
    "PROBLEM_KINDS",
    "Problem",
    "RESOLVED_COLUMNS",
    "RawUtterance",
    "ScanFn",
    "assign_splits",
    "build_manifest",
    "describe_problems",
    "find_audio",
    "list_audio",
    "parse_options",
    "problems_frame",
    "read_label_table",
    "read_label_text",
    "require_root",
    "resolved_frame",
]
