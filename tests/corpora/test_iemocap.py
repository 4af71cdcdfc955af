"""IEMOCAP adapter on a generated Session1-5 tree with EmoEvaluation files."""

from __future__ import annotations

import pytest

from fairser.corpora import load_corpus, scan_corpus
from fairser.errors import CorpusError

CATS = ("neu", "hap", "exc", "sad", "ang", "fru", "xxx")


@pytest.fixture
def iemocap_root(tmp_path, make_files):
    root = tmp_path / "IEMOCAP_full_release"
    for sess in range(1, 6):
        for dialog in (f"Ses0{sess}F_impro01", f"Ses0{sess}M_script02_1"):
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            rels = []
            for k, cat in enumerate(CATS):
                letter = "F" if k % 2 == 0 else "M"
                utt = f"{dialog}_{letter}{k:03d}"
                vad = "[2.5000, 3.0000, 3.5000]"
                lines += [f"[{k + 0.5:.4f} - {k + 1.7:.4f}]\t{utt}\t{cat}\t{vad}",
                          "C-E1:\tNeutral;\t()", ""]
                ext = "wav" if sess != 5 else "flac"
                rels.append(f"Session{sess}/sentences/wav/{dialog}/{utt}.{ext}")
            make_files(root, rels)
            table = root / f"Session{sess}/dialog/EmoEvaluation/{dialog}.txt"
            table.parent.mkdir(parents=True, exist_ok=True)
            table.write_text("\n".join(lines) + "\n")
    return root


def test_iemocap_fixture(iemocap_root):
    df = load_corpus(f"iemocap:{iemocap_root}")
    assert len(df) == 70 and df["speaker"].nunique() == 10
    assert df.drop_duplicates("speaker").set_index("speaker")["gender"].to_dict() == {
        **{f"Ses0{s}F": "F" for s in range(1, 6)}, **{f"Ses0{s}M": "M" for s in range(1, 6)}}
    row = df.set_index("utt_id").loc["Ses03M_script02_1_M003"]
    assert (row["emotion"], row["session"], row["dialog"], row["mode"]) == \
        ("sad", "3", "Ses03M_script02_1", "scripted")
    assert (row["valence"], row["arousal"], row["dominance"]) == (2.5, 3.0, 3.5)
    counts = df["emotion"].value_counts(dropna=False).to_dict()
    assert counts[pd_na_key(counts)] == 10  # xxx -> explicit <NA>
    assert counts["other"] == 20 and counts["happy"] == 10  # exc and fru -> other
    assert df.set_index("utt_id").loc["Ses05F_impro01_F000", "path"].endswith(".flac")


def pd_na_key(counts):
    return next(k for k in counts if not isinstance(k, str))


def test_iemocap_merge_excited(iemocap_root):
    df = load_corpus(f"iemocap:{iemocap_root}", options={"merge_excited": True})
    assert (df["emotion"] == "happy").sum() == 20 and (df["emotion"] == "other").sum() == 10


def test_iemocap_missing_audio_bad_line_and_unknown_code(iemocap_root):
    (iemocap_root / "Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_F000.wav").unlink()
    table = iemocap_root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    table.write_text(table.read_text().replace("\tneu\t", "\tbor\t")
                     + "[1.0 - oops]\tSes01F_impro01_F099\tneu\t[1, 2, 3]\n")
    scan = scan_corpus(f"iemocap:{iemocap_root}")
    got = sorted(zip(scan.problems["kind"], scan.problems["line"].astype(str), strict=True))
    assert got == [("bad-row", "24"), ("missing-audio", "3"), ("unknown-emotion", "3")]
    with pytest.raises(CorpusError, match="unknown-emotion 'bor' in Ses01F_impro01.txt line 3"):
        load_corpus(f"iemocap:{iemocap_root}")


def test_iemocap_without_sessions(tmp_path):
    with pytest.raises(CorpusError, match="no Session1..Session5 folders"):
        load_corpus(f"iemocap:{tmp_path}")
