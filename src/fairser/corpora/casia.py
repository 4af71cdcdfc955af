"""CASIA Chinese emotional corpus, public 1200-utterance subset: ``<speaker>/<emotion>/<id>``.

Four professional speakers (``wangzhe`` and ``ZhaoZuoxiang`` male, ``liuchanhg`` and
``zhaoquanyin`` female; ``liuchang`` is accepted as another spelling of the third) read the
same 50 texts (ids 201-250) in six emotions: angry, fear, happy, neutral, sad, surprise.

Extras: ``text_id``. No official split; :func:`fairser.corpora.assign_splits` gives a
speaker-disjoint one, which with 2 + 2 speakers means one man and one woman in train, one man
and one woman in test, and no dev split.
"""

from __future__ import annotations

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

__all__ = ["ADAPTER", "CasiaOptions", "LABEL_MAP", "SPEAKER_GENDERS"]

#: Emotion folder names -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "angry": "angry", "fear": "fear", "happy": "happy", "neutral": "neutral", "sad": "sad",
    "surprise": "surprise",
}

#: Genders of the corpus's speakers (folder names).
SPEAKER_GENDERS: dict[str, str] = {
    "wangzhe": "M", "ZhaoZuoxiang": "M", "liuchanhg": "F", "liuchang": "F", "zhaoquanyin": "F",
}


class CasiaOptions(CorpusOptions):
    """Options of the ``casia`` adapter."""

    speaker_genders: dict[str, str] = Field(
        default_factory=dict,
        description="Speaker folder -> gender ('M'/'F'/...), merged over the four known "
        "speakers; needed only for speakers outside the public subset.",
    )


def scan(root: Path, opts: CasiaOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Return one record per ``<speaker>/<emotion>/<id>`` audio file under ``root``.

    Files at any other depth are ``bad-name`` problems; a speaker folder without a known
    gender is an ``unknown-gender`` problem (add it to ``speaker_genders``).
    """
    root = require_root(root, "casia")
    genders = {**SPEAKER_GENDERS, **opts.speaker_genders}
    records: list[RawUtterance] = []
    files, problems = find_audio(root)
    for path in files:
        parts = path.relative_to(root).parts
        if len(parts) != 3:
            problems.append(Problem(
                kind="bad-name", path=str(path),
                reason="CASIA files must sit at <speaker>/<emotion>/<id>; move or remove it"))
            continue
        speaker, emotion, _ = parts
        gender = genders.get(speaker)
        if gender is None:
            problems.append(Problem(
                kind="unknown-gender", path=str(path), code=speaker,
                reason=f"speaker {speaker!r} has no known gender; add it to the speaker_genders "
                "option, e.g. {\"" + speaker + "\": \"F\"}"))
            continue
        records.append(RawUtterance(
            utt_id=f"{speaker}-{emotion}-{path.stem}", path=path, speaker=speaker,
            gender=gender, emotion=emotion, extras={"text_id": path.stem},
        ))
    return records, problems


ADAPTER = Adapter(
    name="casia", scan=scan, options=CasiaOptions, label_map=lambda opts: LABEL_MAP,
    language="zh", official_splits=False,
    description="CASIA public subset, <speaker>/<emotion>/<id> files, Mandarin",
)
