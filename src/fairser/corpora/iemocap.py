"""IEMOCAP (Busso et al., 2008): ``Session1-5`` with ``dialog/EmoEvaluation/*.txt`` labels.

Each EmoEvaluation file holds one summary line per utterance::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]

(start and end in seconds, utterance id, consensus category, valence, activation, dominance);
the audio is ``SessionN/sentences/wav/<dialog>/<utterance>.wav`` (any libsndfile extension).
The last part of the id names the speaker's gender (``F000`` female, ``M012`` male); the
speaker is ``Ses0N`` + that letter (two speakers per session, ten in all).

Categories: neu -> neutral, hap -> happy, sad, ang -> angry, sur -> surprise, fea -> fear,
dis -> disgust, fru (frustration) -> other, oth -> other, xxx (no majority) -> ``<NA>``, and
exc (excited) -> other, or -> happy with ``merge_excited=True`` (the usual four-class set-up
neutral/happy+excited/sad/angry). Override any of them with ``label_map``.

Extras: ``session``, ``dialog``, ``mode`` (improvised/scripted), ``valence``, ``arousal``,
``dominance``, ``start_s``, ``end_s``. No official split: one is assigned per speaker (use
``session`` for the customary leave-one-session-out folds).
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
    read_label_text,
    require_root,
)
from fairser.errors import CorpusError

__all__ = ["ADAPTER", "IemocapOptions", "LABEL_MAP"]

#: IEMOCAP categories -> canonical emotions (without the happy+excited merge).
LABEL_MAP: dict[str, str | None] = {
    "neu": "neutral", "hap": "happy", "exc": "other", "sad": "sad", "ang": "angry",
    "sur": "surprise", "fea": "fear", "dis": "disgust", "fru": "other", "oth": "other",
    "xxx": None,
}

_LINE = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses(\d\d)[FM]_(\S+)_([FM])\d+)\s+(\S+)\s+"
    r"\[\s*([\d.]+|nan)\s*,\s*([\d.]+|nan)\s*,\s*([\d.]+|nan)\s*\]"
)


class IemocapOptions(CorpusOptions):
    """Options of the ``iemocap`` adapter."""

    merge_excited: bool = Field(
        default=False,
        description="Map 'exc' (excited) to happy, the usual four-class merge; otherwise it is "
        "'other'.",
    )


def _label_map(opts: IemocapOptions) -> dict[str, str | None]:
    return {**LABEL_MAP, "exc": "happy"} if opts.merge_excited else dict(LABEL_MAP)


def scan(root: Path, opts: IemocapOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Parse every ``SessionN/dialog/EmoEvaluation/*.txt`` and pair it with its audio."""
    root = require_root(root, "iemocap")
    sessions = sorted(p for p in root.glob("Session*") if p.is_dir())
    if not sessions:
        raise CorpusError(
            f"iemocap:{root}: no Session1..Session5 folders; pass the IEMOCAP_full_release "
            "folder as ROOT"
        )
    records: list[RawUtterance] = []
    problems: list[Problem] = []
    for session in sessions:
        files, skipped = find_audio(session / "sentences" / "wav")
        problems.extend(skipped)
        audio = {p.stem: p for p in files}
        for table in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            if table.name.startswith("."):
                continue
            text = read_label_text(table, what="EmoEvaluation file")
            for lineno, line in enumerate(text.splitlines(), start=1):
                if not line.startswith("["):
                    continue
                m = _LINE.match(line)
                if not m:
                    problems.append(Problem(
                        kind="bad-row", path=str(table), source=str(table), line=lineno,
                        reason="summary line does not read '[start - end] id category "
                        "[V, A, D]'; fix the line"))
                    continue
                start, end, utt, sess, rest, letter, cat, val, act, dom = m.groups()
                dialog = utt.rsplit("_", 1)[0]
                path = audio.get(utt, session / "sentences" / "wav" / dialog / f"{utt}.wav")
                records.append(RawUtterance(
                    utt_id=utt, path=path, speaker=f"Ses{sess}{letter}", gender=letter,
                    emotion=cat, source=str(table), line=lineno,
                    extras={
                        "session": str(int(sess)), "dialog": dialog,
                        "mode": "improvised" if rest.startswith("impro") else "scripted",
                        "valence": float(val), "arousal": float(act), "dominance": float(dom),
                        "start_s": float(start), "end_s": float(end),
                    },
                ))
    return records, problems


ADAPTER = Adapter(
    name="iemocap", scan=scan, options=IemocapOptions, label_map=_label_map,
    language="en", official_splits=False,
    description="IEMOCAP, Session1-5 with EmoEvaluation files, English",
)
