"""EMOVO and CREMA-D adapters on generated trees laid out like the real corpora."""

from __future__ import annotations

import pytest

from fairser.corpora import load_corpus, scan_corpus
from fairser.errors import ConfigError, CorpusError

EMOVO_CODES = ("dis", "gio", "neu", "pau", "rab", "sor", "tri")


@pytest.fixture
def emovo_root(tmp_path, make_files):
    rels = [f"{s}/{e}-{s}-{t}.wav" for s in ("f1", "f2", "f3", "m1", "m2", "m3")
            for e in EMOVO_CODES for t in ("b1", "n5")]
    make_files(tmp_path / "EMOVO", rels)
    return tmp_path / "EMOVO"


def test_emovo_fixture(emovo_root):
    df = load_corpus(f"emovo:{emovo_root}")
    assert len(df) == 84 and (df["language"] == "it").all()
    assert df.drop_duplicates("speaker").set_index("speaker")["gender"].to_dict() == {
        "f1": "F", "f2": "F", "f3": "F", "m1": "M", "m2": "M", "m3": "M"}
    row = df.set_index("utt_id").loc["pau-m2-n5"]
    assert (row["emotion"], row["sentence"]) == ("fear", "n5")
    assert sorted(df["emotion"].unique()) == ["angry", "disgust", "fear", "happy", "neutral",
                                              "sad", "surprise"]
    assert df.drop_duplicates("speaker").groupby("split")["gender"].nunique().eq(2).all()


def test_emovo_broken(emovo_root, make_files):
    make_files(emovo_root, ["f1/xyz-f1-b1.wav", "f1/readme.wav"])
    with pytest.raises(CorpusError) as err:
        load_corpus(f"emovo:{emovo_root}")
    msg = str(err.value)
    assert "2 problem(s): unknown-emotion 'xyz' in xyz-f1-b1.wav" in msg
    assert "bad-name in readme.wav (file name does not follow EMOVO's" in msg


@pytest.fixture
def crema_root(tmp_path, make_files):
    root = tmp_path / "CREMA-D"
    rels = [f"AudioWAV/{a}_{s}_{e}_{lv}.wav" for a in (1001, 1002, 1003, 1004, 1005, 1006)
            for s, e, lv in (("DFA", "ANG", "XX"), ("IEO", "HAP", "HI"), ("TIE", "NEU", "XX"),
                             ("IWW", "SAD", "LO"), ("ITH", "FEA", "MD"), ("MTI", "DIS", "XX"))]
    make_files(root, rels)
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n"
        "1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n"
        "1003,21,Female,Caucasian,Not Hispanic\n1004,42,Female,Caucasian,Not Hispanic\n"
        "1005,29,Male,African American,Not Hispanic\n1006,58,Female,Caucasian,Not Hispanic\n"
    )
    return root


def test_crema_d_fixture(crema_root):
    df = load_corpus(f"crema-d:{crema_root}")
    assert len(df) == 36
    assert list(df.columns[9:]) == ["sentence", "level", "age", "race", "ethnicity"]
    assert str(df["age"].dtype) == "Int64"
    row = df.set_index("utt_id").loc["1005_IEO_HAP_HI"]
    assert (row["gender"], row["emotion"], row["age"], row["race"], row["level"]) == \
        ("M", "happy", 29, "African American", "HI")
    assert sorted(df["emotion"].unique()) == ["angry", "disgust", "fear", "happy", "neutral",
                                              "sad"]


def test_crema_d_demographics_beside_audio_and_broken_rows(crema_root, make_files):
    make_files(crema_root, ["AudioWAV/1099_DFA_ANG_XX.wav", "AudioWAV/1001_DFA_XYZ_XX.wav"])
    (crema_root / "AudioWAV" / "1002_DFA_ANG_XX.wav").write_bytes(b"")  # empty file
    scan = scan_corpus(f"crema-d:{crema_root / 'AudioWAV'}",
                       options={"audio_dir": "."})  # table found in ROOT/..
    kinds = dict(zip(scan.problems["code"].fillna(scan.problems["utt_id"]), scan.problems["kind"],
                     strict=True))
    assert kinds == {"XYZ": "unknown-emotion", "1099": "unknown-gender",
                     "1002_DFA_ANG_XX": "unreadable-audio"}
    assert len(scan.manifest) == 35


def test_crema_d_two_genders_and_missing_table(crema_root):
    table = crema_root / "VideoDemographics.csv"
    table.write_text(table.read_text() + "1001,51,Female,Caucasian,Not Hispanic\n")
    with pytest.raises(CorpusError) as err:
        load_corpus(f"crema-d:{crema_root}")
    assert "6 problem(s): gender-conflict '1001' in VideoDemographics.csv line 2 " \
        "(1001_DFA_ANG_XX.wav)" in str(err.value)
    assert "(keep one row per actor)" in str(err.value)
    problems = scan_corpus(f"crema-d:{crema_root}").problems
    assert problems["reason"].iloc[0] == ("actor '1001' has rows with different Sex in "
                                          "VideoDemographics.csv (lines 2, 8); keep one row per "
                                          "actor")
    table.unlink()
    with pytest.raises(CorpusError) as err:
        load_corpus(f"crema-d:{crema_root}")
    assert str(err.value) == (f"crema-d:{crema_root}: VideoDemographics.csv not found in "
                              f"{crema_root} or its parent; put the CREMA-D demographics table "
                              "there or set the demographics option")
    with pytest.raises(ConfigError, match="unknown key 'demographic'"):
        load_corpus(f"crema-d:{crema_root}", options={"demographic": "x.csv"})
