"""EMOVO Italian emotional speech (Costantini et al., 2014): ``<spk>/<emo>-<spk>-<sentence>``.

Six actors (``f1``-``f3`` female, ``m1``-``m3`` male) read 14 sentences (``b1``-``b3``,
``l1``-``l4``, ``n1``-``n5``, ``d1``, ``d2``) in seven emotions coded by their Italian names:
``dis`` disgusto -> disgust, ``gio`` gioia -> happy, ``neu`` neutro -> neutral,
``pau`` paura -> fear, ``rab`` rabbia -> angry, ``sor`` sorpresa -> surprise,
``tri`` tristezza -> sad. The speaker's gender is the first letter of its code.

Extras: ``sentence``. No official split (one is assigned).
"""

from __future__ import annotations

import re
from pathlib import Path

from fairser.corpora._base import (
    Adapter,
    CorpusOptions,
    Problem,
    RawUtterance,
    find_audio,
    require_root,
)

__all__ = ["ADAPTER", "EmovoOptions", "LABEL_MAP"]

#: EMOVO emotion codes -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear", "rab": "angry",
    "sor": "surprise", "tri": "sad",
}

_STEM = re.compile(r"^([a-z]+)-([fmFM]\d+)-([a-zA-Z]+\d*)$")


class EmovoOptions(CorpusOptions):
    """Options of the ``emovo`` adapter (the shared ones only)."""


def scan(root: Path, opts: EmovoOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Return one record per ``<emo>-<spk>-<sentence>`` audio file under ``root``."""
    root = require_root(root, "emovo")
    records: list[RawUtterance] = []
    files, problems = find_audio(root)
    for path in files:
        m = _STEM.match(path.stem)
        if not m:
            problems.append(Problem(
                kind="bad-name", path=str(path),
                reason="file name does not follow EMOVO's <emotion>-<speaker>-<sentence> "
                "pattern (e.g. rab-f1-b1); rename or remove it"))
            continue
        emotion, speaker, sentence = m.groups()
        speaker = speaker.lower()
        records.append(RawUtterance(
            utt_id=path.stem, path=path, speaker=speaker, gender=speaker[0].upper(),
            emotion=emotion, extras={"sentence": sentence},
        ))
    return records, problems


ADAPTER = Adapter(
    name="emovo", scan=scan, options=EmovoOptions, label_map=lambda opts: LABEL_MAP,
    language="it", official_splits=False,
    description="EMOVO, <spk>/<emo>-<spk>-<sentence> files, Italian",
)
