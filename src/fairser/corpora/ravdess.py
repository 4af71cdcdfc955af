"""RAVDESS (Livingstone & Russo, 2018): ``Actor_NN/MM-VV-EE-II-SS-RR-AA.wav``.

Fields of the file stem: modality (03 audio-only; 01/02 are video and have no audio file here),
vocal channel (01 speech, 02 song), emotion ``EE`` (01 neutral, 02 calm, 03 happy, 04 sad,
05 angry, 06 fearful, 07 disgust, 08 surprised), intensity (01 normal, 02 strong), statement
(01 "Kids are talking by the door", 02 "Dogs are sitting by the door"), repetition and actor
``AA`` (odd = male, even = female). Files may sit in any sub-folder of the root.

Extras: ``vocal_channel`` (speech/song), ``intensity`` (normal/strong), ``statement``,
``repetition``. No official split: :func:`fairser.corpora.assign_splits` assigns one.
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

__all__ = ["ADAPTER", "LABEL_MAP", "RavdessOptions"]

#: RAVDESS emotion codes -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
    "07": "disgust", "08": "surprise",
}

_STEM = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_CHANNEL = {"01": "speech", "02": "song"}
_INTENSITY = {"01": "normal", "02": "strong"}


class RavdessOptions(CorpusOptions):
    """Options of the ``ravdess`` adapter (see :class:`CorpusOptions` for the shared ones)."""


def scan(root: Path, opts: RavdessOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Find every RAVDESS file under ``root`` and decode its name.

    Parameters
    ----------
    root : Path
        Folder holding ``Actor_01`` ... ``Actor_24`` (or the files themselves).
    opts : RavdessOptions
        Parsed options.

    Returns
    -------
    records, problems : list, list
        One record per well-named file; a ``bad-name`` problem per other audio file.
    """
    root = require_root(root, "ravdess")
    records: list[RawUtterance] = []
    files, problems = find_audio(root)
    for path in files:
        m = _STEM.match(path.stem)
        if not m:
            problems.append(Problem(
                kind="bad-name", path=str(path),
                reason="file name does not follow RAVDESS's MM-VV-EE-II-SS-RR-AA pattern; "
                "rename or remove it"))
            continue
        _, channel, emotion, intensity, statement, repetition, actor = m.groups()
        records.append(RawUtterance(
            utt_id=path.stem, path=path, speaker=actor,
            gender="M" if int(actor) % 2 == 1 else "F", emotion=emotion,
            extras={
                "vocal_channel": _CHANNEL.get(channel, channel),
                "intensity": _INTENSITY.get(intensity, intensity),
                "statement": statement,
                "repetition": repetition,
            },
        ))
    return records, problems


ADAPTER = Adapter(
    name="ravdess", scan=scan, options=RavdessOptions, label_map=lambda opts: LABEL_MAP,
    language="en", official_splits=False,
    description="RAVDESS speech/song, Actor_NN/03-VV-EE-II-SS-RR-AA files, English",
)
