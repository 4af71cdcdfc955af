"""Corpora: a folder of emotional speech -> a validated manifest (one row per utterance).

Load any supported corpus with a ``KIND:ROOT`` spec::

    from fairser.corpora import load_corpus
    df = load_corpus("ravdess:/data/ravdess")
    df = load_corpus("emodb:/data/emodb", options={"seed": 1})
    src = load_corpus("synthetic-source:")          # built-in synthetic pair, cached

The manifest schema is documented in :mod:`fairser.corpora._schema`. Label maps, gender
spellings and split names can be overridden with ``options`` (``label_map``, ``gender_map``,
``split_map``); an unknown code is never dropped silently: :func:`load_corpus` raises one
:class:`~fairser.errors.CorpusError` listing every problem, and :func:`scan_corpus` returns the
good rows plus a problems table (what ``fairser corpus inspect --skip-bad`` writes).

Adding a corpus is one new module defining an ``ADAPTER`` plus one line in :data:`CORPORA`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from fairser.corpora import (
    ased,
    biic_podcast,
    casia,
    crema_d,
    csv,
    emodb,
    emovo,
    iemocap,
    msp_podcast,
    ravdess,
    synthetic,
)
from fairser.corpora._base import (
    PROBLEM_COLUMNS,
    RESOLVED_COLUMNS,
    Adapter,
    CorpusOptions,
    CorpusScan,
    assign_splits,
    build_manifest,
    parse_options,
)
from fairser.corpora._report import save_manifest, save_problems, summarize
from fairser.corpora._schema import (
    COLUMNS,
    EMOTIONS,
    GENDERS,
    MISSING_VALUES,
    SPLITS,
    coerce_manifest,
    empty_manifest,
    is_missing,
    normalise_gender,
    utt_key,
    validate_manifest,
)
from fairser.errors import CorpusError

__all__ = [
    "COLUMNS",
    "CORPORA",
    "CorpusOptions",
    "CorpusScan",
    "EMOTIONS",
    "GENDERS",
    "MISSING_VALUES",
    "PROBLEM_COLUMNS",
    "RESOLVED_COLUMNS",
    "SPLITS",
    "assign_splits",
    "coerce_manifest",
    "empty_manifest",
    "is_missing",
    "load_corpus",
    "normalise_gender",
    "parse_spec",
    "save_manifest",
    "save_problems",
    "scan_corpus",
    "summarize",
    "utt_key",
    "validate_manifest",
]

#: Registered corpus kinds (read-only): kind -> :class:`~fairser.corpora._base.Adapter`.
CORPORA: Mapping[str, Adapter] = MappingProxyType({
    "ravdess": ravdess.ADAPTER,
    "casia": casia.ADAPTER,
    "emodb": emodb.ADAPTER,
    "ased": ased.ADAPTER,
    "emovo": emovo.ADAPTER,
    "crema-d": crema_d.ADAPTER,
    "iemocap": iemocap.ADAPTER,
    "msp-podcast": msp_podcast.ADAPTER,
    "biic-podcast": biic_podcast.ADAPTER,
    "csv": csv.ADAPTER,
    "synthetic-source": synthetic.SOURCE_ADAPTER,
    "synthetic-target": synthetic.TARGET_ADAPTER,
})


def parse_spec(spec: str) -> tuple[Adapter, Path | None]:
    """Split ``"KIND:ROOT"`` into the registered adapter and the root folder.

    ``KIND`` is case-insensitive and ``_`` may stand for ``-`` (``crema_d``). ``ROOT`` may be
    empty only for the synthetic kinds (returned as ``None``: the default cache folder).

    Raises
    ------
    CorpusError
        If the spec has no ``:``, names an unknown kind, or lacks a root.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise CorpusError(
            f"corpus spec {spec!r}: expected KIND:ROOT, e.g. ravdess:/data/ravdess "
            f"(kinds: {', '.join(CORPORA)})"
        )
    kind, root = spec.split(":", 1)
    key = kind.strip().lower().replace("_", "-")
    if key not in CORPORA:
        raise CorpusError(
            f"corpus spec {spec!r}: unknown corpus kind {kind!r}; use one of {', '.join(CORPORA)}"
        )
    if not root.strip() and not key.startswith("synthetic"):
        raise CorpusError(f"corpus spec {spec!r}: missing ROOT after ':'; give the corpus folder")
    return CORPORA[key], (Path(root.strip()).expanduser() if root.strip() else None)


def scan_corpus(spec: str, *, options: Mapping[str, Any] | None = None,
                progress: bool = False, audio_check: bool = False) -> CorpusScan:
    """Scan a corpus and return the good rows plus every problem found.

    Parameters
    ----------
    spec : str
        ``"KIND:ROOT"``, e.g. ``"ravdess:/data/ravdess"``.
    options : mapping, optional
        Adapter options (see each adapter's ``*Options`` class); unknown keys are errors.
    progress : bool, default=False
        Show a rich progress bar while reading the audio headers.
    audio_check : bool, default=False
        Also decode every file and report silent, clipped, out-of-range and truncated audio
        (slow the first time; verdicts are cached per file). Header-level checks (missing,
        unreadable, empty, truncated headers) always run.

    Returns
    -------
    CorpusScan
        ``.manifest`` (validated, problem rows left out), ``.problems`` (one row per
        problem: kind, path, source, line, utt_id, code, reason) and ``.resolved`` (values
        changed on request, e.g. ``resolve_gender="majority"``).

    Raises
    ------
    CorpusError
        When the corpus cannot be read at all (missing folder or label file, empty folder).
    ConfigError
        For unknown or invalid options.
    """
    adapter, root = parse_spec(spec)
    opts = parse_options(adapter.options, options, kind=adapter.name)
    records, problems = adapter.scan(root, opts)
    kind = spec.split(":", 1)[0].strip().lower().replace("_", "-")
    shown = f"{kind}:{root}" if root is not None else f"{kind}:"
    return build_manifest(adapter, root or Path(), opts, records, problems, spec=shown,
                          progress=progress, audio_check=audio_check)


def load_corpus(spec: str, *, options: Mapping[str, Any] | None = None,
                skip_bad: bool = False, progress: bool = False,
                audio_check: bool = False) -> pd.DataFrame:
    """Load a corpus as a validated manifest.

    Parameters
    ----------
    spec : str
        ``"KIND:ROOT"``; kinds are the keys of :data:`CORPORA`.
    options : mapping, optional
        Adapter options (``label_map``, ``gender_map``, ``split_map``, ``seed``,
        ``split_fractions`` and per-adapter ones); unknown keys are errors.
    skip_bad : bool, default=False
        Leave rows with problems out instead of raising.
    progress : bool, default=False
        Show a rich progress bar while reading the audio headers.
    audio_check : bool, default=False
        Also check the samples (see :func:`scan_corpus`).

    Returns
    -------
    pandas.DataFrame
        The manifest (schema in :mod:`fairser.corpora._schema`).

    Raises
    ------
    CorpusError
        When any problem is found (one line listing every unknown code and the rows holding
        it, missing or unreadable audio, duplicates, speakers with two genders), unless
        ``skip_bad``.
    """
    result = scan_corpus(spec, options=options, progress=progress, audio_check=audio_check)
    if not skip_bad:
        result.raise_for_problems()
    return result.manifest
