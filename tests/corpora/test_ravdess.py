"""RAVDESS adapter on a generated tree laid out like the real corpus."""

from __future__ import annotations

import pytest

from fairser.corpora import COLUMNS, load_corpus, scan_corpus
from fairser.errors import CorpusError


def test_ravdess_fixture(ravdess_root):
    df = load_corpus(f"ravdess:{ravdess_root}")
    assert len(df) == 96
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert list(df.columns[len(COLUMNS):]) == ["vocal_channel", "intensity", "statement",
                                               "repetition"]
    assert (df["corpus"] == "ravdess").all() and (df["language"] == "en").all()
    spk = df.drop_duplicates("speaker").set_index("speaker")["gender"].to_dict()
    assert spk == {"01": "M", "02": "F", "03": "M", "04": "F", "05": "M", "06": "F"}
    assert sorted(df["emotion"].unique()) == ["angry", "calm", "disgust", "fear", "happy",
                                              "neutral", "sad", "surprise"]
    assert df["duration_s"].round(3).eq(0.1).all()
    row = df.set_index("utt_id").loc["03-01-05-02-01-01-03"]
    assert (row["emotion"], row["intensity"], row["statement"], row["speaker"]) == \
        ("angry", "strong", "01", "03")
    assert row["path"].endswith("Actor_03/03-01-05-02-01-01-03.flac")
    assert set(df["split"]) == {"train", "dev", "test"}  # 3 + 3 speakers: one each


def test_ravdess_bad_name_is_reported(ravdess_root, make_files):
    make_files(ravdess_root, ["Actor_01/03-01-01.wav"])
    with pytest.raises(CorpusError) as err:
        load_corpus(f"ravdess:{ravdess_root}")
    assert "bad-name in 03-01-01.wav (file name does not follow RAVDESS's MM-VV-EE-II-SS-RR-AA" \
        in str(err.value)


def test_ravdess_scan_is_repeatable(ravdess_root):
    a = scan_corpus(f"ravdess:{ravdess_root}", options={"seed": 5}).manifest
    b = scan_corpus(f"ravdess:{ravdess_root}", options={"seed": 5}).manifest
    assert a.equals(b)
