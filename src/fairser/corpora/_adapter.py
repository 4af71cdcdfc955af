"""What an adapter is and what its scan yields.

An :class:`Adapter` names a corpus kind and knows how to *scan* it: walk its folder or label
table and return :class:`RawUtterance` records with the corpus's own codes, plus problems for
what it could not parse. Everything after that (label maps, audio headers, conflicts, splits,
validation) is :func:`fairser.corpora._build.build_manifest`, the same for every corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairser.audio import AUDIO_EXTENSIONS
from fairser.corpora._options import CorpusOptions
from fairser.corpora._problems import Problem

__all__ = ["Adapter", "RawUtterance", "ScanFn"]


@dataclass(frozen=True)
class RawUtterance:
    """One utterance as an adapter found it, with the corpus's own codes.

    Attributes
    ----------
    utt_id : str
        Id unique within the corpus (usually the file stem).
    path : Path or str
        Audio file (need not exist: a missing file becomes a problem).
    speaker : str
        Speaker id.
    gender : object
        Raw gender spelling (normalised later), ``None`` when unknown.
    emotion : str or None
        Raw emotion code looked up in the label map, ``None`` for no label.
    split : object
        Raw split name, or ``None`` when the corpus has no official split.
    extras : dict
        Further columns (age, intensity, text id...).
    source : str or None
        Label file the row came from (``None`` for file-name-coded corpora).
    line : int or None
        Line of ``source`` (1 = header line).
    """

    utt_id: str
    path: Path | str
    speaker: str
    gender: object
    emotion: str | None
    split: object = None
    extras: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    line: int | None = None


ScanFn = Callable[[Path, Any], tuple[list[RawUtterance], list[Problem]]]


@dataclass(frozen=True)
class Adapter:
    """A corpus kind: how to scan it and what its codes mean.

    Attributes
    ----------
    name : str
        Corpus kind and the manifest's ``corpus`` value.
    scan : callable
        ``scan(root, options) -> (records, problems)``.
    options : type
        :class:`CorpusOptions` subclass holding the adapter's options.
    label_map : callable
        ``label_map(options) -> dict`` of the default emotion codes.
    language : str
        Default language code.
    official_splits : bool
        Whether the corpus ships its own splits (otherwise :func:`assign_splits` runs).
    description : str
        One line for help texts.
    extensions : tuple of str
        Audio file endings the adapter reads when it walks a folder.
    """

    name: str
    scan: ScanFn
    options: type[CorpusOptions]
    label_map: Callable[[Any], Mapping[str, str | None]]
    language: str
    official_splits: bool
    description: str
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS
