"""The ASED adapter on a generated NNEmotion/xn-yy-aa-gg-bb tree."""

from __future__ import annotations

import pytest

from fairser.corpora import load_corpus, scan_corpus
from fairser.errors import CorpusError

FOLDERS = {"n1": "01Neutral", "f2": "02Fearful", "h3": "03Happy", "s4": "04Sad", "a5": "05Angry"}


@pytest.fixture
def ased_root(tmp_path, make_files):
    """8 speakers: 01-04 female (gg=01), 05-08 male (gg=02), every emotion twice."""
    rels = []
    for spk in range(1, 9):
        gender = "01" if spk <= 4 else "02"
        for code, folder in FOLDERS.items():
            for sentence in (1, 2):
                rels.append(f"{folder}/{code}-{sentence:02d}-01-{gender}-{spk:02d}.flac")
    make_files(tmp_path / "ased", rels, seconds=0.05)
    return tmp_path / "ased"


def test_ased_fixture(ased_root):
    df = load_corpus(f"ased:{ased_root}")
    assert len(df) == 80 and (df["language"] == "am").all() and (df["corpus"] == "ased").all()
    assert df.drop_duplicates("speaker")["gender"].value_counts().to_dict() == {"F": 4, "M": 4}
    assert df.groupby("emotion").size().to_dict() == {
        "angry": 16, "fear": 16, "happy": 16, "neutral": 16, "sad": 16}
    row = df.set_index("utt_id").loc["h3-02-01-02-07"]
    assert (row["speaker"], row["gender"], row["emotion"], row["sentence"], row["repetition"]) \
        == ("07", "M", "happy", "02", "01")
    assert df.groupby("speaker")["split"].nunique().max() == 1  # speaker-disjoint
    assert df.drop_duplicates("speaker").groupby("split")["gender"].nunique().eq(2).all()


def test_ased_upper_case_name_is_read(ased_root):
    (ased_root / "04Sad/s4-01-01-01-03.flac").rename(ased_root / "04Sad/S4-01-01-01-03.flac")
    df = load_corpus(f"ased:{ased_root}")
    row = df.set_index("utt_id").loc["s4-01-01-01-03"]  # the id is the lower-case stem
    assert row["path"].endswith("04Sad/S4-01-01-01-03.flac") and row["emotion"] == "sad"


def test_ased_gender_conflict_reported_then_resolved(ased_root):
    # speaker 03 (female) gets one file coded male, as speakers 09/15/21/23/25 in the release
    (ased_root / "03Happy/h3-01-01-01-03.flac").rename(ased_root / "03Happy/h3-01-01-02-03.flac")
    spec = f"ased:{ased_root}"
    scan = scan_corpus(spec)
    assert scan.problems[["kind", "utt_id", "code"]].values.tolist() == [
        ["gender-conflict", "h3-01-01-02-03", "03"]]
    assert len(scan.manifest) == 79 and len(scan.resolved) == 0
    with pytest.raises(CorpusError, match="gender-conflict '03' in h3-01-01-02-03.flac .*pass "
                       "-o resolve_gender=majority"):
        load_corpus(spec)
    fixed = scan_corpus(spec, options={"resolve_gender": "majority"})
    assert len(fixed.problems) == 0 and len(fixed.manifest) == 80
    assert fixed.resolved[["utt_id", "column", "value", "resolved"]].values.tolist() == [
        ["h3-01-01-02-03", "gender", "M", "F"]]


def test_ased_bad_codes_and_names(ased_root, make_files):
    make_files(ased_root, ["01Neutral/n1-01-01-03-09.flac",   # gender code 03
                           "05Angry/x5-01-01-01-10.flac",     # emotion code x5
                           "02Fearful/h3-09-01-01-09.flac",   # happy file in the fear folder
                           "05Angry/readme-take2.flac"])
    scan = scan_corpus(f"ased:{ased_root}")
    got = sorted(zip(scan.problems["kind"], scan.problems["code"].fillna(""), strict=True))
    assert got == [("bad-name", ""), ("bad-name", "h3"), ("unknown-emotion", "x5"),
                   ("unknown-gender", "03")]
    ok = load_corpus(f"ased:{ased_root}", skip_bad=True,
                     options={"gender_map": {"03": "M"}, "label_map": {"x5": "angry"}})
    assert {"n1-01-01-03-09", "x5-01-01-01-10"} <= set(ok["utt_id"])
