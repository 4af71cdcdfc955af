"""CREMA-D (Cao et al., 2014): ``AudioWAV/AAAA_SSS_EEE_LL.wav`` + ``VideoDemographics.csv``.

File stems: actor id ``AAAA`` (1001-1091), sentence code ``SSS`` (IEO, TIE, ...), emotion
``EEE`` (ANG angry, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad) and level ``LL``
(LO, MD, HI, XX unspecified). ``VideoDemographics.csv`` (columns ActorID, Age, Sex, Race,
Ethnicity) gives each actor's sex; an actor missing from it is an ``unknown-gender``
problem. The table is looked for in ``ROOT`` and then in ``ROOT/..`` (the usual checkouts
keep it beside ``AudioWAV``).

Extras: ``sentence``, ``level``, ``age`` (Int64), ``race``, ``ethnicity``. No official split.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from pydantic import Field

from fairser.corpora._base import (
    Adapter,
    CorpusOptions,
    Problem,
    RawUtterance,
    find_audio,
    read_label_table,
    require_root,
)
from fairser.errors import CorpusError

__all__ = ["ADAPTER", "CremaDOptions", "LABEL_MAP"]

#: CREMA-D emotion codes -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
    "SAD": "sad",
}

_STEM = re.compile(r"^(\d+)_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_NEEDED = ("ActorID", "Sex")


class CremaDOptions(CorpusOptions):
    """Options of the ``crema-d`` adapter."""

    audio_dir: str = Field(default="AudioWAV",
                           description="Folder of the audio files, relative to ROOT.")
    demographics: str = Field(
        default="VideoDemographics.csv",
        description="Demographics table, relative to ROOT (also looked for in ROOT/..).",
    )


def _demographics(root: Path, opts: CremaDOptions) -> tuple[Path, dict[str, list[dict]]]:
    candidates = [root / opts.demographics, root.parent / opts.demographics]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise CorpusError(
            f"crema-d:{root}: {opts.demographics} not found in {root} or its parent; put the "
            "CREMA-D demographics table there or set the demographics option"
        )
    table = read_label_table(path, what="demographics table")
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise CorpusError(
            f"{path}: missing column(s) {', '.join(missing)}; CREMA-D's demographics table "
            "needs ActorID, Age, Sex, Race, Ethnicity"
        )
    out: dict[str, list[dict]] = {}
    for i, row in enumerate(table.to_dict("records")):
        out.setdefault(row["ActorID"].strip(), []).append({**row, "_line": i + 2})
    return path, out


def scan(root: Path, opts: CremaDOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Return one record per ``AAAA_SSS_EEE_LL`` file in ``ROOT/AudioWAV`` (or ``ROOT``)."""
    root = require_root(root, "crema-d")
    table_path, actors = _demographics(root, opts)
    folder = root / opts.audio_dir if (root / opts.audio_dir).is_dir() else root
    records: list[RawUtterance] = []
    files, problems = find_audio(folder, recursive=False)
    for path in files:
        m = _STEM.match(path.stem)
        if not m:
            problems.append(Problem(
                kind="bad-name", path=str(path),
                reason="file name does not follow CREMA-D's ActorID_Sentence_Emotion_Level "
                "pattern (e.g. 1001_DFA_ANG_XX); rename or remove it"))
            continue
        actor, sentence, emotion, level = m.groups()
        rows = actors.get(actor)
        if rows is None:
            problems.append(Problem(
                kind="unknown-gender", path=str(path), code=actor,
                reason=f"actor {actor!r} is not in {table_path.name}; add a row for it"))
            continue
        if len({r["Sex"].strip().lower() for r in rows}) > 1:
            lines = ", ".join(str(r["_line"]) for r in rows)
            problems.append(Problem(
                kind="gender-conflict", path=str(path), code=actor, source=str(table_path),
                line=rows[0]["_line"],
                reason=f"actor {actor!r} has rows with different Sex in {table_path.name} "
                f"(lines {lines}); keep one row per actor"))
            continue
        info = rows[0]
        age = info.get("Age", "").strip()
        records.append(RawUtterance(
            utt_id=path.stem, path=path, speaker=actor, gender=info["Sex"], emotion=emotion,
            source=str(table_path), line=info["_line"],
            extras={
                "sentence": sentence, "level": level,
                "age": int(age) if age.isdigit() else pd.NA,
                "race": info.get("Race") or None, "ethnicity": info.get("Ethnicity") or None,
            },
        ))
    return records, problems


ADAPTER = Adapter(
    name="crema-d", scan=scan, options=CremaDOptions, label_map=lambda opts: LABEL_MAP,
    language="en", official_splits=False,
    description="CREMA-D, AudioWAV/ + VideoDemographics.csv, English",
)
