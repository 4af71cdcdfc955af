"""MSP-Podcast and BIIC-Podcast adapters on a generated Labels/ + Audios/ tree."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.corpora import load_corpus, scan_corpus
from fairser.errors import ConfigError, CorpusError

HEADER = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
CODES = "NHSACUDFOX"
SPLITS = ("Train", "Train", "Development", "Test1", "Test2", "Test3")


def _rows():
    rows = []
    for i in range(20):
        spk = 100 + i % 6
        gender = "Male" if spk % 2 else "Female"
        rows.append(f"MSP-PODCAST_{i:04d}_0001.wav,{CODES[i % 10]},{3 + i % 3:.1f},4.0,"
                    f"3.5,{spk},{gender},{SPLITS[i % 6]}")
    rows.append("MSP-PODCAST_0100_0001.wav,N,4.0,4.0,4.0,Unknown,Unknown,Train")
    return rows


@pytest.fixture
def msp_root(tmp_path, make_files):
    root = tmp_path / "MSP-Podcast"
    rows = _rows()
    make_files(root, [f"Audios/{r.split(',')[0]}" for r in rows[:-1]])
    make_files(root, ["Audios/MSP-PODCAST_0100_0001.flac"])  # any extension is found
    (root / "Labels").mkdir()
    (root / "Labels/labels_consensus.csv").write_text(HEADER + "\n".join(rows) + "\n")
    return root


def test_msp_podcast_fixture(msp_root):
    df = load_corpus(f"msp-podcast:{msp_root}")
    assert len(df) == 21
    assert list(df.columns[9:]) == ["split_set", "arousal", "valence", "dominance"]
    assert str(df["arousal"].dtype) == "float64"
    row = df.set_index("utt_id").loc["MSP-PODCAST_0003_0001"]
    assert (row["emotion"], row["speaker"], row["gender"], row["split"], row["split_set"]) == \
        ("angry", "103", "M", "test", "Test1")
    by = df.set_index("utt_id")
    assert by.loc["MSP-PODCAST_0004_0001", "emotion"] == "contempt"
    assert by.loc["MSP-PODCAST_0005_0001", "emotion"] == "surprise"
    assert by.loc["MSP-PODCAST_0002_0001", "split"] == "dev"
    assert by["emotion"].isna().sum() == 2  # X = no agreement
    unknown = by.loc["MSP-PODCAST_0100_0001"]
    assert unknown["speaker"] == "unknown-MSP-PODCAST_0100_0001"
    assert pd.isna(unknown["gender"])
    assert unknown["path"].endswith(".flac")


def test_msp_podcast_broken(msp_root, make_files):
    make_files(msp_root, ["Audios/MSP-PODCAST_0200_0001.wav"])
    labels = msp_root / "Labels/labels_consensus.csv"
    text = labels.read_text()
    text += "MSP-PODCAST_9999_0001.wav,N,4,4,4,101,Male,Train\n"  # no audio
    text += "MSP-PODCAST_0000_0001.wav,N,4,4,4,100,Female,Train\n"  # duplicate
    text += "MSP-PODCAST_0001_0001.wav,Z,4,4,4,101,Male,Holdout\n"  # dup + codes
    text += "MSP-PODCAST_0200_0001.wav,N,4,4,4,100,Male,Train\n"  # speaker 100 both genders
    labels.write_text(text)
    scan = scan_corpus(f"msp-podcast:{msp_root}")
    kinds = scan.problems["kind"].value_counts().to_dict()
    assert kinds == {"missing-audio": 1, "duplicate": 2, "unknown-emotion": 1,
                     "unknown-split": 1, "gender-conflict": 1}
    conflict = scan.problems.query("kind == 'gender-conflict'").iloc[0]
    assert (conflict["line"], conflict["code"]) == (26, "100")  # the one Male row of 100
    missing = scan.problems.query("kind == 'missing-audio'").iloc[0]
    assert (missing["line"], missing["utt_id"]) == (23, "MSP-PODCAST_9999_0001")
    with pytest.raises(CorpusError) as err:
        load_corpus(f"msp-podcast:{msp_root}")
    msg = str(err.value)
    assert "unknown-emotion 'Z' in labels_consensus.csv line 25 (MSP-PODCAST_0001_0001.wav)" \
        in msg
    assert "unknown-split 'Holdout' in labels_consensus.csv line 25" in msg
    fixed = scan_corpus(f"msp-podcast:{msp_root}",
                        options={"label_map": {"Z": "other"}, "split_map": {"Holdout": "test"}})
    assert "unknown-emotion" not in set(fixed.problems["kind"])


def test_msp_podcast_column_overrides_and_missing_parts(msp_root, tmp_path):
    labels = msp_root / "Labels/labels_consensus.csv"
    labels.write_text(labels.read_text().replace("EmoClass", "Emotion"))
    with pytest.raises(CorpusError) as err:
        load_corpus(f"msp-podcast:{msp_root}")
    assert str(err.value) == (f"{labels}: missing column(s) EmoClass; rename them or map them "
                              "with the columns option, e.g. columns={\"emotion\": \"MyColumn\"}")
    assert len(load_corpus(f"msp-podcast:{msp_root}",
                           options={"columns": {"emotion": "Emotion"}})) == 21
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['mood'\]"):
        load_corpus(f"msp-podcast:{msp_root}", options={"columns": {"mood": "Emotion"}})
    with pytest.raises(CorpusError, match="label table Labels/labels_consensus.csv not found"):
        load_corpus(f"msp-podcast:{tmp_path}")


def test_biic_podcast_same_layout_overridable(msp_root):
    labels = msp_root / "Labels/labels_consensus.csv"
    labels.write_text(labels.read_text().replace(",N,", ",NEU,").replace("Female", "女")
                      .replace("Male", "男"))
    with pytest.raises(CorpusError, match="unknown-emotion 'NEU'"):
        load_corpus(f"biic-podcast:{msp_root}")
    df = load_corpus(f"biic-podcast:{msp_root}",
                     options={"label_map": {"NEU": "neutral"},
                              "gender_map": {"男": "M", "女": "F"}})
    assert len(df) == 21 and (df["corpus"] == "biic-podcast").all()
    assert (df["language"] == "zh-TW").all()
    assert (df["emotion"] == "neutral").sum() == 3
    assert df.dropna(subset=["gender"]).groupby("gender").size().to_dict() == {"F": 10, "M": 10}
