"""An MSP-Podcast-format folder at full size, to exercise the ``msp-podcast`` adapter at scale.

:func:`write_msp_scale` writes ``ROOT/Labels/labels_consensus.csv`` (MSP-Podcast's column names,
codes and split names) and ``ROOT/Audios/`` with one symbolic link per row, named like the
release (``MSP-PODCAST_0153_0042.wav``) and pointing at real audio from another corpus (e.g.
the FLAC files of ``../shared/data``; a FLAC under a ``.wav`` name is read by content). The
audio does not match the labels: this is a folder to time and test the adapter on, not a
corpus to train on.

Default sizes approximate MSP-Podcast release 1.11 (figures as we recall the release notes,
not checked against the licensed data): 151,654 speaking turns in Train 84,030, Development
19,815, Test1 30,647, Test2 14,815 and Test3 2,347; about 2,700 identified speakers (about
55 % of them male) plus turns with an ``Unknown`` speaker and gender; speakers belong to one
split each; turns per speaker are heavy-tailed (a few podcasters have thousands of turns);
consensus classes roughly N 29 %, H 18 %, X (no agreement) 30 %, and the rest A, S, C, U, D,
F, O.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairser.audio import AUDIO_EXTENSIONS
from fairser.errors import CorpusError

__all__ = ["MSP_EMOTION_SHARES", "MSP_SPLITS", "write_msp_scale"]

#: Rows per split name of MSP-Podcast 1.11 (approximate, see the module docstring).
MSP_SPLITS: dict[str, int] = {"Train": 84_030, "Development": 19_815, "Test1": 30_647,
                              "Test2": 14_815, "Test3": 2_347}

#: EmoClass shares (approximate).
MSP_EMOTION_SHARES: dict[str, float] = {"N": 0.29, "H": 0.18, "A": 0.05, "S": 0.05, "C": 0.04,
                                        "U": 0.03, "D": 0.02, "F": 0.01, "O": 0.03, "X": 0.30}


def _audio_files(audio_from: Path) -> list[str]:
    files = sorted(str(p) for p in Path(audio_from).rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                   and not p.name.startswith("."))
    if not files:
        raise CorpusError(f"{audio_from}: no audio files to link to; pass a folder of real "
                          "audio, e.g. ../shared/data")
    return files


def _labels(utterances: int, speakers: int, male_share: float, unknown_share: float,
            rng: np.random.Generator) -> pd.DataFrame:
    total = sum(MSP_SPLITS.values())
    sizes = {k: round(v * utterances / total) for k, v in MSP_SPLITS.items()}
    sizes["Train"] += utterances - sum(sizes.values())
    spk_ids = rng.permutation(np.arange(1, speakers + 1))
    cuts = np.cumsum([round(speakers * n / utterances) for n in list(sizes.values())[:-1]])
    frames = []
    for (split, n), group in zip(sizes.items(), np.split(spk_ids, cuts), strict=True):
        if n == 0:
            continue
        group = group if len(group) else spk_ids[:1]
        weights = rng.lognormal(0.0, 1.6, len(group))  # heavy-tailed turns per speaker
        who = rng.choice(group, size=n, p=weights / weights.sum())
        unknown = rng.random(n) < unknown_share
        frames.append(pd.DataFrame({"split": split, "speaker": who, "unknown": unknown}))
    df = pd.concat(frames, ignore_index=True)
    male = {int(s): bool(m) for s, m in zip(spk_ids, rng.random(speakers) < male_share,
                                            strict=True)}
    codes = list(MSP_EMOTION_SHARES)
    p = np.array(list(MSP_EMOTION_SHARES.values()))
    df["EmoClass"] = rng.choice(codes, size=len(df), p=p / p.sum())
    df["SpkrID"] = np.where(df["unknown"], "Unknown", df["speaker"].astype(str))
    df["Gender"] = np.where(df["unknown"], "Unknown",
                            np.where(df["speaker"].map(male), "Male", "Female"))
    # a podcast per ~40 turns, numbered segments inside it, in shuffled order like a release
    order = rng.permutation(len(df))
    podcast, segment = order // 40 + 1, order % 40 + 1
    df["FileName"] = [f"MSP-PODCAST_{a:04d}_{b:04d}.wav" for a, b in zip(podcast, segment,
                                                                         strict=True)]
    df["EmoAct"] = np.round(rng.uniform(1, 7, len(df)), 1)
    df["EmoVal"] = np.round(rng.uniform(1, 7, len(df)), 1)
    df["EmoDom"] = np.round(rng.uniform(1, 7, len(df)), 1)
    df["Split_Set"] = df["split"]
    df = df.sort_values("FileName", kind="stable").reset_index(drop=True)
    return df[["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
               "Split_Set"]]


def write_msp_scale(root: str | Path, *, audio_from: str | Path,
                    utterances: int = sum(MSP_SPLITS.values()), speakers: int = 2_700,
                    male_share: float = 0.55, unknown_share: float = 0.05, seed: int = 0,
                    audio: Sequence[str] | None = None) -> Path:
    """Write an MSP-Podcast-format folder at ``root`` (which must not exist yet).

    Parameters
    ----------
    root : str or Path
        New folder to create (written in a temporary sibling, then renamed: never half-made).
    audio_from : str or Path
        Folder of real audio the links point at (searched recursively).
    utterances : int, default=151,654
        Rows of the label table (split sizes scale with it).
    speakers : int, default=2,700
        Identified speakers, each in one split.
    male_share : float, default=0.55
        Share of male speakers.
    unknown_share : float, default=0.05
        Share of rows with speaker and gender ``Unknown``.
    seed : int, default=0
        Same seed, same folder.
    audio : sequence of str, optional
        The audio files to link to (default: every audio file under ``audio_from``).

    Returns
    -------
    Path
        ``root``.

    Raises
    ------
    CorpusError
        If ``root`` exists or ``audio_from`` holds no audio.
    """
    root = Path(root).expanduser().absolute()
    if root.exists():
        raise CorpusError(f"{root}: already exists; remove it or choose a new folder")
    if utterances < 10 or speakers < 10 or speakers > utterances:
        raise CorpusError(f"utterances={utterances}, speakers={speakers}: need at least 10 "
                          "of each and no more speakers than utterances")
    files = list(audio) if audio is not None else _audio_files(Path(audio_from))
    rng = np.random.default_rng(seed)
    labels = _labels(utterances, speakers, male_share, unknown_share, rng)
    targets = [os.path.abspath(files[i]) for i in rng.integers(0, len(files), len(labels))]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        (tmp / "Labels").mkdir()
        (tmp / "Audios").mkdir()
        labels.to_csv(tmp / "Labels" / "labels_consensus.csv", index=False)
        audios = str(tmp / "Audios")
        for name, target in zip(labels["FileName"], targets, strict=True):
            os.symlink(target, os.path.join(audios, name))
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
