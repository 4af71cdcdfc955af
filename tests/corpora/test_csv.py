"""The csv adapter: user-named columns, relative paths, extras, round trip of an export."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.corpora import load_corpus, scan_corpus
from fairser.errors import ConfigError, CorpusError


@pytest.fixture
def table(tmp_path, make_files):
    make_files(tmp_path / "audio", [f"s{i % 4}/u{i}.wav" for i in range(12)])
    rows = ["file,who,sex,label,age,note"]
    for i in range(12):
        sex = "female" if i % 4 in (0, 1) else "Male"
        rows.append(f"audio/s{i % 4}/u{i}.wav,s{i % 4},{sex},{['anger', 'sad', 'neutral'][i % 3]},"
                    f"{20 + i % 4},n{i}")
    path = tmp_path / "meta.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


OPTS = {"columns": {"path": "file", "speaker": "who", "gender": "sex", "emotion": "label"},
        "name": "mydata", "language": "en"}


def test_csv_user_columns(table):
    df = load_corpus(f"csv:{table}", options=OPTS)
    assert len(df) == 12 and (df["corpus"] == "mydata").all() and (df["language"] == "en").all()
    assert list(df.columns[9:]) == ["age", "note"]
    assert str(df["age"].dtype) == "Int64" and str(df["note"].dtype) == "string"
    row = df.set_index("utt_id").loc["audio/s2/u6"]
    assert (row["speaker"], row["gender"], row["emotion"]) == ("s2", "M", "angry")
    assert row["path"] == str(table.parent / "audio/s2/u6.wav")
    # no split column: a speaker-disjoint split with both genders per split is assigned
    assert set(df["split"]) == {"train", "test"}
    assert df.drop_duplicates("speaker").groupby("split")["gender"].nunique().eq(2).all()


def test_csv_errors(table, tmp_path):
    with pytest.raises(CorpusError) as err:
        load_corpus(f"csv:{table}")
    assert str(err.value) == (f"{table}: missing column(s) path, speaker; rename them or map "
                              "them with the columns option, e.g. columns={\"path\": \"file\"}")
    with pytest.raises(CorpusError, match="table not found"):
        load_corpus(f"csv:{tmp_path / 'none.csv'}")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['label'\]"):
        load_corpus(f"csv:{table}", options={"columns": {"label": "x"}})
    table.write_text(table.read_text().replace("anger", "furious", 1)
                     + "audio/s9/gone.wav,s9,female,sad,30,x\n,s1,female,sad,30,y\n")
    scan = scan_corpus(f"csv:{table}", options=OPTS)
    got = sorted(zip(scan.problems["kind"], scan.problems["line"], strict=True))
    assert got == [("bad-row", 15), ("missing-audio", 14), ("unknown-emotion", 2)]


def test_csv_tsv_and_no_labels(tmp_path, make_files):
    make_files(tmp_path, ["a.wav", "b.wav", "c.flac"])
    (tmp_path / "t.tsv").write_text("path\tspeaker\nb.wav\tx\na.wav\tx\nc.flac\ty\n")
    df = load_corpus(f"csv:{tmp_path / 't.tsv'}")
    assert df["utt_id"].tolist() == ["b", "a", "c"]
    assert df["emotion"].isna().all() and df["gender"].isna().all()
    assert (df["language"] == "und").all()
    (tmp_path / "codes.csv").write_text("path,speaker,code,score\na.wav,x,01,1.5\nb.wav,x,02,\n")
    coded = load_corpus(f"csv:{tmp_path / 'codes.csv'}")
    assert coded["code"].tolist() == ["01", "02"] and str(coded["code"].dtype) == "string"
    assert str(coded["score"].dtype) == "float64" and coded["score"].isna().tolist() == [False,
                                                                                         True]


def test_exported_manifest_reads_back(tmp_path, ravdess_root):
    df = load_corpus(f"ravdess:{ravdess_root}")
    out = tmp_path / "m.parquet"
    df.to_parquet(out)
    back = load_corpus(f"csv:{out}", options={"name": "ravdess"})
    pd.testing.assert_frame_equal(back, df)


def test_csv_speaker_with_two_genders(table):
    # s0 has rows u0, u4, u8: u0 now says Male, the other two female
    table.write_text(table.read_text().replace("audio/s0/u0.wav,s0,female",
                                               "audio/s0/u0.wav,s0,Male"))
    with pytest.raises(CorpusError) as err:
        load_corpus(f"csv:{table}", options=OPTS)
    assert "1 problem(s): gender-conflict 's0' in meta.csv line 2 (u0.wav) (fix its gender, " \
        "or pass -o resolve_gender=majority" in str(err.value)
    kept = load_corpus(f"csv:{table}", options=OPTS, skip_bad=True)
    assert "audio/s0/u0" not in set(kept["utt_id"]) and len(kept) == 11
    scan = scan_corpus(f"csv:{table}", options={**OPTS, "resolve_gender": "majority"})
    assert len(scan.problems) == 0 and len(scan.manifest) == 12
    assert (scan.manifest.loc[scan.manifest["speaker"] == "s0", "gender"] == "F").all()
    assert scan.resolved[["utt_id", "line", "column", "value", "resolved"]].values.tolist() == [
        ["audio/s0/u0", 2, "gender", "M", "F"]]
    # a tie (one M row, one F row) has no majority: every row of the speaker stays a problem
    table.write_text(table.read_text().replace("audio/s0/u8.wav,s0,female,",
                                               "audio/s0/u8.wav,s0,null,"))
    scan = scan_corpus(f"csv:{table}", options={**OPTS, "resolve_gender": "majority"})
    assert scan.problems["utt_id"].tolist() == ["audio/s0/u0", "audio/s0/u4"]
    assert "no majority" in scan.problems["reason"].iloc[0] and len(scan.resolved) == 0
