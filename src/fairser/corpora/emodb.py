"""Berlin Database of Emotional Speech (EmoDB): ``wav/SSTTTEV.wav``.

Stem fields: speaker ``SS`` (03, 10, 11, 12, 15 male; 08, 09, 13, 14, 16 female), text
``TTT`` (a01-a07, b01-b10), emotion letter ``E`` (German initials: W Wut -> angry,
L Langeweile -> boredom, E Ekel -> disgust, A Angst -> fear, F Freude -> happy,
T Trauer -> sad, N neutral) and version ``V``. Files are read from ``ROOT/wav`` when it exists,
else from ``ROOT``.

Extras: ``text_id``, ``version``. No official split (one is assigned).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from fairser.corpora._base import (
    Adapter,
    CorpusOptions,
    Problem,
    RawUtterance,
    find_audio,
    require_root,
)

__all__ = ["ADAPTER", "EmodbOptions", "LABEL_MAP", "SPEAKER_GENDERS"]

#: EmoDB emotion letters -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad",
    "N": "neutral",
}

#: Genders of the ten speakers.
SPEAKER_GENDERS: dict[str, str] = {
    "03": "M", "10": "M", "11": "M", "12": "M", "15": "M",
    "08": "F", "09": "F", "13": "F", "14": "F", "16": "F",
}

_STEM = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])$")


class EmodbOptions(CorpusOptions):
    """Options of the ``emodb`` adapter."""

    speaker_genders: dict[str, str] = Field(
        default_factory=dict,
        description="Speaker code -> gender, merged over the ten known speakers.",
    )


def scan(root: Path, opts: EmodbOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Return one record per ``SSTTTEV`` audio file in ``ROOT/wav`` (or ``ROOT``)."""
    root = require_root(root, "emodb")
    folder = root / "wav" if (root / "wav").is_dir() else root
    genders = {**SPEAKER_GENDERS, **opts.speaker_genders}
    records: list[RawUtterance] = []
    files, problems = find_audio(folder, recursive=False)
    for path in files:
        m = _STEM.match(path.stem)
        if not m:
            problems.append(Problem(
                kind="bad-name", path=str(path),
                reason="file name does not follow EmoDB's SSTTTEV pattern (e.g. 03a01Wa); "
                "rename or remove it"))
            continue
        speaker, text, emotion, version = m.groups()
        if speaker not in genders:
            problems.append(Problem(
                kind="unknown-gender", path=str(path), code=speaker,
                reason=f"speaker {speaker!r} has no known gender; add it to the speaker_genders "
                "option, e.g. {\"" + speaker + "\": \"F\"}"))
            continue
        records.append(RawUtterance(
            utt_id=path.stem, path=path, speaker=speaker, gender=genders[speaker],
            emotion=emotion,
            extras={"text_id": text, "version": version},
        ))
    return records, problems


ADAPTER = Adapter(
    name="emodb", scan=scan, options=EmodbOptions, label_map=lambda opts: LABEL_MAP,
    language="de", official_splits=False,
    description="EmoDB, wav/SSTTTEV files, German",
)
