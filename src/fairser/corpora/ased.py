"""Amharic Speech Emotional Dataset, ASED v1 (Retta et al., 2022): ``<NN><Emotion>/<stem>``.

Folders ``01Neutral``, ``02Fearful``, ``03Happy``, ``04Sad``, ``05Angry``; file stems
``xn-yy-aa-gg-bb``: ``xn`` the emotion letter and folder number (``n1`` neutral, ``f2`` fear,
``h3`` happy, ``s4`` sad, ``a5`` angry), ``yy`` the sentence, ``aa`` the repetition, ``gg`` the
gender (``01`` female, ``02`` male) and ``bb`` the speaker (``01``-``65``). Language ``am``.

The release is imperfect, and the adapter reports rather than guesses:

- A speaker whose files carry both gender codes (the release has five such files: speakers 09,
  15, 21, 23 and 25 each have one file coded male among files coded female) gives one
  ``gender-conflict`` problem per file that disagrees with the speaker's majority. With the
  option ``resolve_gender="majority"`` (``-o resolve_gender=majority``) those files take the
  majority's gender instead and are listed as resolved (``fairser corpus inspect`` shows them).
- Stems are matched case-insensitively (the release has ``04Sad/S4-04-02-01-29``); the utterance
  id is the lower-case stem, so a corrected file name keeps its id.
- A file whose emotion number disagrees with its ``NN<Emotion>`` folder is a ``bad-name``
  problem; an unknown emotion or gender code is an ``unknown-emotion``/``unknown-gender``
  problem naming the file (map it with ``label_map``/``gender_map``).

Extras: ``sentence``, ``repetition``. No official split: a seeded, speaker-disjoint,
gender-stratified one is assigned (:func:`fairser.corpora.assign_splits`).
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

__all__ = ["ADAPTER", "AsedOptions", "GENDER_CODES", "LABEL_MAP"]

#: Emotion codes (letter + folder number, lower-case) -> canonical emotions.
LABEL_MAP: dict[str, str | None] = {
    "n1": "neutral", "f2": "fear", "h3": "happy", "s4": "sad", "a5": "angry",
}

#: Gender field ``gg`` -> gender.
GENDER_CODES: dict[str, str] = {"01": "F", "02": "M"}

_STEM = re.compile(r"^([a-z]\d)-(\d{2})-(\d{2})-(\d{2})-(\d{2})$", re.IGNORECASE)
_FOLDER = re.compile(r"^(\d{2})[a-z]+$", re.IGNORECASE)


class AsedOptions(CorpusOptions):
    """Options of the ``ased`` adapter (the shared ones; see ``resolve_gender``)."""


def scan(root: Path, opts: AsedOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Return one record per ``xn-yy-aa-gg-bb`` audio file under ``root``.

    Parameters
    ----------
    root : Path
        Folder holding ``01Neutral`` ... ``05Angry``.
    opts : AsedOptions
        Parsed options.

    Returns
    -------
    records, problems : list, list
        One record per well-named file; a ``bad-name`` problem per other audio file.
    """
    root = require_root(root, "ased")
    records: list[RawUtterance] = []
    files, problems = find_audio(root)
    for path in files:
        m = _STEM.match(path.stem)
        if not m:
            problems.append(Problem(
                kind="bad-name", path=str(path),
                reason="file name does not follow ASED's xn-yy-aa-gg-bb pattern (e.g. "
                "n1-01-01-01-01); rename or remove it"))
            continue
        emotion, sentence, repetition, gender, speaker = m.groups()
        emotion = emotion.lower()
        folder = _FOLDER.match(path.parent.name) if path.parent != root else None
        if folder and int(folder.group(1)) != int(emotion[1]):
            problems.append(Problem(
                kind="bad-name", path=str(path), code=emotion,
                reason=f"emotion code {emotion!r} does not match its folder "
                f"{path.parent.name!r}; move the file to its emotion's folder or fix its "
                "name"))
            continue
        records.append(RawUtterance(
            utt_id=path.stem.lower(), path=path, speaker=speaker,
            gender=GENDER_CODES.get(gender, gender), emotion=emotion,
            extras={"sentence": sentence, "repetition": repetition},
        ))
    return records, problems


ADAPTER = Adapter(
    name="ased", scan=scan, options=AsedOptions, label_map=lambda opts: LABEL_MAP,
    language="am", official_splits=False,
    description="ASED v1, NNEmotion/xn-yy-aa-gg-bb files, Amharic",
)
