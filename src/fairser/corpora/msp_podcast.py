"""MSP-Podcast (Lotfian & Busso, 2019): ``Labels/labels_consensus.csv`` + ``Audios/``.

The consensus table has one row per utterance with columns ``FileName``, ``EmoClass``,
``EmoAct``, ``EmoVal``, ``EmoDom``, ``SpkrID``, ``Gender`` and ``Split_Set``. EmoClass codes:
N neutral, H happy, S sad, A angry, C contempt, U surprise, D disgust, F fear, O other, and
X (no agreement) -> ``<NA>``. Split_Set: ``Train`` -> train, ``Development`` -> dev,
``Test1``/``Test2``/``Test3`` -> test (the original name is kept in ``split_set``). A speaker
id ``Unknown`` becomes a per-utterance pseudo speaker ``unknown-<utt_id>`` (so unknown
speakers never merge into one), with the gender the row gives.

Column names, the label file, the audio folder and every code can be overridden (the
``biic-podcast`` adapter is this one with another name and language).

Extras: ``split_set``, ``arousal``, ``valence``, ``dominance``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator

from fairser.corpora._base import (
    Adapter,
    CorpusOptions,
    Problem,
    RawUtterance,
    list_audio,
    read_label_table,
    require_root,
)
from fairser.corpora._schema import is_missing
from fairser.errors import CorpusError

__all__ = ["ADAPTER", "COLUMNS", "LABEL_MAP", "PodcastOptions", "make_scan"]

#: EmoClass codes -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "N": "neutral", "H": "happy", "S": "sad", "A": "angry", "C": "contempt", "U": "surprise",
    "D": "disgust", "F": "fear", "O": "other", "X": None,
}

#: Logical field -> column name of the consensus table.
COLUMNS: dict[str, str] = {
    "file": "FileName", "emotion": "EmoClass", "arousal": "EmoAct", "valence": "EmoVal",
    "dominance": "EmoDom", "speaker": "SpkrID", "gender": "Gender", "split": "Split_Set",
}
_REQUIRED = ("file", "emotion", "speaker", "gender")


class PodcastOptions(CorpusOptions):
    """Options of the ``msp-podcast`` and ``biic-podcast`` adapters."""

    labels_file: str = Field(default="Labels/labels_consensus.csv",
                             description="Consensus label table, relative to ROOT.")
    audio_dir: str = Field(default="Audios", description="Audio folder, relative to ROOT.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Logical field -> column name, merged over MSP-Podcast's names "
        "(fields: file, emotion, arousal, valence, dominance, speaker, gender, split).",
    )
    unknown_speakers: tuple[str, ...] = Field(
        default=("Unknown", "unknown", ""),
        description="Speaker ids that mean 'unknown' (each such row gets its own pseudo "
        "speaker).",
    )

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(value) - set(COLUMNS))
        if bad:
            raise ValueError(f"unknown field(s) {bad}; known fields are {sorted(COLUMNS)}")
        return value


def _float(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def make_scan(kind: str) -> Callable[[Path, PodcastOptions],
                                     tuple[list[RawUtterance], list[Problem]]]:
    """Return the scan function of a podcast-style corpus called ``kind``."""

    def scan(root: Path, opts: PodcastOptions) -> tuple[list[RawUtterance], list[Problem]]:
        root = require_root(root, kind)
        cols = {**COLUMNS, **opts.columns}
        labels = root / opts.labels_file
        if not labels.is_file():
            raise CorpusError(f"{kind}:{root}: label table {opts.labels_file} not found; set "
                              "the labels_file option to the consensus CSV")
        audio_dir = root / opts.audio_dir
        if not audio_dir.is_dir():
            raise CorpusError(f"{kind}:{root}: audio folder {opts.audio_dir} not found; set the "
                              "audio_dir option")
        table = read_label_table(labels, what="consensus label table")
        missing = [cols[f] for f in _REQUIRED if cols[f] not in table.columns]
        if missing:
            raise CorpusError(
                f"{labels}: missing column(s) {', '.join(missing)}; rename them or map them "
                "with the columns option, e.g. columns={\"emotion\": \"MyColumn\"}"
            )
        by_name: dict[str, str] = {}
        by_stem: dict[str, str] = {}
        files, _ = list_audio(audio_dir)  # a skipped file a row names fails its header read
        for p in files:
            name = os.path.basename(p)
            by_name.setdefault(name, p)
            by_stem.setdefault(os.path.splitext(name)[0], p)
        n = len(table)
        column = {f: table[cols[f]].tolist() if cols[f] in table.columns else [None] * n
                  for f in COLUMNS}
        unknown = set(opts.unknown_speakers)
        audio_base = str(audio_dir)
        source = str(labels)
        records: list[RawUtterance] = []
        for i in range(n):
            name = column["file"][i].strip()
            stem = os.path.splitext(name)[0]
            path = by_name.get(name) or by_stem.get(stem) or os.path.join(audio_base, name)
            speaker = column["speaker"][i].strip()
            if speaker in unknown or is_missing(speaker):
                speaker = f"unknown-{stem}"
            split = column["split"][i]
            extras: dict[str, object] = {}
            if split is not None:
                extras["split_set"] = split or None
            for f in ("arousal", "valence", "dominance"):
                if column[f][i] is not None:
                    extras[f] = _float(column[f][i])
            records.append(RawUtterance(
                utt_id=stem, path=path, speaker=speaker, gender=column["gender"][i],
                emotion=column["emotion"][i], split=split, source=source, line=i + 2,
                extras=extras,
            ))
        return records, []

    scan.__doc__ = f"Read the {kind} consensus table and pair each row with its audio file."
    return scan


ADAPTER = Adapter(
    name="msp-podcast", scan=make_scan("msp-podcast"), options=PodcastOptions,
    label_map=lambda opts: LABEL_MAP, language="en", official_splits=True,
    description="MSP-Podcast, Labels/labels_consensus.csv + Audios/, English",
)
