"""CASIA and EmoDB adapters on generated trees laid out like the real corpora."""

from __future__ import annotations

import pytest

from fairser.corpora import load_corpus
from fairser.errors import CorpusError

CASIA_SPEAKERS = ("ZhaoZuoxiang", "liuchanhg", "wangzhe", "zhaoquanyin")
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture
def casia_root(tmp_path, make_files):
    rels = [f"{s}/{e}/{i}.wav" for s in CASIA_SPEAKERS for e in CASIA_EMOTIONS
            for i in (201, 202)]
    make_files(tmp_path / "casia", rels)
    return tmp_path / "casia"


@pytest.fixture
def emodb_root(tmp_path, make_files):
    stems = ["03a01Wa", "03a01Nc", "10b02La", "08a02Fb", "09b10Ec", "13a04Ad", "16a07Ta",
             "11b01Nd", "12a05Wb", "14b09Fa", "15a02Na", "16b03Aa"]
    make_files(tmp_path / "emodb", [f"wav/{s}.flac" for s in stems])
    return tmp_path / "emodb"


def test_casia_fixture(casia_root):
    df = load_corpus(f"casia:{casia_root}")
    assert len(df) == 48 and (df["language"] == "zh").all()
    assert df.drop_duplicates("speaker").set_index("speaker")["gender"].to_dict() == {
        "ZhaoZuoxiang": "M", "liuchanhg": "F", "wangzhe": "M", "zhaoquanyin": "F"}
    assert df.groupby(["emotion", "gender"]).size().eq(4).all()
    assert df.set_index("utt_id").loc["wangzhe-sad-202", "text_id"] == "202"
    # 2 + 2 speakers: train and test with one man and one woman each, no dev
    by_split = df.drop_duplicates("speaker").groupby("split")["gender"].apply(sorted).to_dict()
    assert by_split == {"test": ["F", "M"], "train": ["F", "M"]}


def test_casia_unknown_speaker_and_emotion(casia_root, make_files):
    make_files(casia_root, ["newguy/angry/201.wav", "wangzhe/bored/201.wav", "wangzhe/x.wav"])
    with pytest.raises(CorpusError) as err:
        load_corpus(f"casia:{casia_root}")
    msg = str(err.value)
    assert "unknown-emotion 'bored' in 201.wav (map it to a canonical emotion with the " \
        "label_map option)" in msg
    assert "unknown-gender 'newguy' in 201.wav (add it to the speaker_genders option, e.g. " \
        '{"newguy": "F"})' in msg
    assert "bad-name in x.wav (CASIA files must sit at <speaker>/<emotion>/<id>" in msg
    df = load_corpus(f"casia:{casia_root}", skip_bad=True)
    assert len(df) == 48
    fixed = load_corpus(f"casia:{casia_root}", skip_bad=True,
                        options={"speaker_genders": {"newguy": "male"},
                                 "label_map": {"bored": "boredom"}})
    assert len(fixed) == 50
    assert fixed.set_index("utt_id").loc["newguy-angry-201", "gender"] == "M"


def test_emodb_fixture(emodb_root):
    df = load_corpus(f"emodb:{emodb_root}")
    assert len(df) == 12 and (df["language"] == "de").all()
    row = df.set_index("utt_id").loc["10b02La"]
    assert (row["emotion"], row["gender"], row["speaker"], row["text_id"], row["version"]) == \
        ("boredom", "M", "10", "b02", "a")
    assert df.set_index("utt_id").loc["08a02Fb", "gender"] == "F"
    assert sorted(df["emotion"].unique()) == ["angry", "boredom", "disgust", "fear", "happy",
                                              "neutral", "sad"]


def test_emodb_reads_root_without_wav_folder_and_reports_bad_letters(tmp_path, make_files):
    make_files(tmp_path, ["03a01Wa.wav", "03a01Xa.wav", "99a01Wa.wav"])
    with pytest.raises(CorpusError) as err:
        load_corpus(f"emodb:{tmp_path}")
    msg = str(err.value)
    assert "unknown-emotion 'X' in 03a01Xa.wav" in msg
    assert "unknown-gender '99' in 99a01Wa.wav" in msg


def test_emodb_empty_folder(tmp_path):
    (tmp_path / "wav").mkdir()
    with pytest.raises(CorpusError, match="no utterances found"):
        load_corpus(f"emodb:{tmp_path}")
