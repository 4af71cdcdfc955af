"""Scans report every file and row they skip, with the reason (issue 11, one test per class).

Classes: unsupported extension, broken and looping links, unreadable files and folders
(permission), empty files, truncated files, missing-value spellings in every column, and the
sample checks (silent, clipped, out of range, truncated) with their cache.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fairser.corpora import MISSING_VALUES, is_missing, load_corpus, scan_corpus
from fairser.errors import CorpusError


def _kinds(scan) -> dict[str, str]:
    """{file name: problem kind} of a scan."""
    return {os.path.basename(p): k for p, k in zip(scan.problems["path"], scan.problems["kind"],
                                                    strict=True)}


def _only(scan, name: str) -> pd.Series:
    rows = scan.problems[scan.problems["path"].str.endswith(name)]
    assert len(rows) == 1, scan.problems
    return rows.iloc[0]


def test_unsupported_extension_is_reported(ravdess_root):
    (ravdess_root / "Actor_01" / "03-01-02-01-01-01-01.m4a").write_bytes(b"\0\0\0 ftypM4A ")
    (ravdess_root / "Actor_01" / "notes.txt").write_text("not audio: passed over")
    (ravdess_root / "Actor_01" / "._03-01-01-01-01-01-01.wav").write_bytes(b"macOS metadata")
    scan = scan_corpus(f"ravdess:{ravdess_root}")
    row = _only(scan, ".m4a")
    assert (row["kind"], row["code"]) == ("unsupported-audio", ".m4a")
    assert "convert it to .flac or .wav" in row["reason"]
    assert len(scan.problems) == 1 and len(scan.manifest) == 96
    with pytest.raises(CorpusError, match=r"1 problem\(s\): unsupported-audio '.m4a' in "
                       r"03-01-02-01-01-01-01.m4a"):
        load_corpus(f"ravdess:{ravdess_root}")


def test_broken_and_looping_links_are_reported(ravdess_root, tmp_path):
    actor = ravdess_root / "Actor_01"
    (actor / "03-01-02-01-01-01-01.wav").symlink_to(tmp_path / "gone.wav")
    (actor / "03-01-02-01-02-01-01.wav").symlink_to(actor / "03-01-02-01-02-02-01.wav")
    (actor / "03-01-02-01-02-02-01.wav").symlink_to(actor / "03-01-02-01-02-01-01.wav")
    (ravdess_root / "Actor_02" / "again").symlink_to(ravdess_root)  # a folder loop
    scan = scan_corpus(f"ravdess:{ravdess_root}")
    kinds = _kinds(scan)
    assert kinds == {"03-01-02-01-01-01-01.wav": "broken-link",
                     "03-01-02-01-02-01-01.wav": "broken-link",
                     "03-01-02-01-02-02-01.wav": "broken-link", "again": "broken-link"}
    assert "target missing" in _only(scan, "03-01-02-01-01-01-01.wav")["reason"]
    assert "loop" in _only(scan, "03-01-02-01-02-01-01.wav")["reason"]
    assert len(scan.manifest) == 96  # the loop was not followed twice


def test_linked_folders_are_followed(ravdess_root, tmp_path, make_files):
    make_files(tmp_path / "elsewhere", ["03-01-05-01-01-01-07.wav"])
    (ravdess_root / "Actor_07").symlink_to(tmp_path / "elsewhere")
    df = load_corpus(f"ravdess:{ravdess_root}")
    assert "03-01-05-01-01-01-07" in set(df["utt_id"])


def test_empty_file_is_reported(ravdess_root):
    (ravdess_root / "Actor_02" / "03-01-02-01-01-01-02.wav").write_bytes(b"")
    row = _only(scan_corpus(f"ravdess:{ravdess_root}"), "03-01-02-01-01-01-02.wav")
    assert row["kind"] == "unreadable-audio" and "empty file (0 bytes)" in row["reason"]


def test_unreadable_file_says_permission(ravdess_root, monkeypatch):
    import fairser.audio as audio

    locked = ravdess_root / "Actor_01" / "03-01-01-01-01-01-01.wav"
    real_open = audio._open

    def guarded(path):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path)

    monkeypatch.setattr(audio, "_open", guarded)
    row = _only(scan_corpus(f"ravdess:{ravdess_root}"), locked.name)
    assert row["kind"] == "unreadable-audio"
    assert row["reason"] == ("unreadable audio: permission denied; make it readable "
                             f"(chmod a+r {locked})")


def test_unreadable_folder_is_reported(ravdess_root, monkeypatch):
    import fairser.corpora._files as files

    locked = str(ravdess_root / "Actor_04")
    real = os.scandir

    def guarded(path):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(files.os, "scandir", guarded)
    scan = scan_corpus(f"ravdess:{ravdess_root}")
    row = _only(scan, "Actor_04")
    assert row["kind"] == "unreadable-folder" and "permission denied" in row["reason"]
    assert len(scan.manifest) == 80  # the 16 files of Actor_04 are not silently gone


def test_truncated_header_is_reported(ravdess_root):
    path = ravdess_root / "Actor_05" / "03-01-01-01-01-01-05.wav"
    path.write_bytes(path.read_bytes()[:2000])
    row = _only(scan_corpus(f"ravdess:{ravdess_root}"), path.name)
    assert row["kind"] == "truncated-audio" and "its header declares" in row["reason"]


@pytest.mark.parametrize("spelling", ["NaN", "nan", "NA", "N/A", "None", "null", "", "  ",
                                      "<NA>", "unknown"])
def test_missing_value_spellings_are_missing_in_every_column(tmp_path, make_files, spelling):
    assert is_missing(spelling) and spelling.strip().lower() in MISSING_VALUES
    make_files(tmp_path, [f"a{i}.wav" for i in range(8)])
    rows = ["file,who,sex,label,part,lang,note"]
    for i in range(6):
        rows.append(f"a{i}.wav,s{i % 3},{'F' if i % 3 else 'M'},sad,train,de,n{i}")
    rows.append(f"a6.wav,s1,{spelling},{spelling},{spelling},{spelling},{spelling}")
    rows.append(f"a7.wav,{spelling},F,sad,train,de,x")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    opts = {"columns": {"path": "file", "speaker": "who", "gender": "sex", "emotion": "label",
                        "split": "part", "language": "lang"}, "language": "en"}
    scan = scan_corpus(f"csv:{tmp_path / 't.csv'}", options=opts)
    # a missing speaker is never a speaker called "NaN": the row is reported
    bad = scan.problems.iloc[0]
    assert len(scan.problems) == 1 and (bad["kind"], bad["line"]) == ("bad-row", 9)
    assert "speaker is missing" in bad["reason"]
    row = scan.manifest.set_index("utt_id").loc["a6"]
    assert pd.isna(row["gender"]) and pd.isna(row["emotion"]) and pd.isna(row["note"])
    assert row["language"] == "en" and row["speaker"] == "s1"
    assert set(scan.manifest["speaker"]) == {"s0", "s1", "s2"}


def test_missing_path_is_a_bad_row(tmp_path, make_files):
    make_files(tmp_path, ["a.wav"])
    (tmp_path / "t.csv").write_text("path,speaker\na.wav,x\nN/A,x\n")
    scan = scan_corpus(f"csv:{tmp_path / 't.csv'}")
    assert scan.problems[["kind", "line"]].values.tolist() == [["bad-row", 3]]
    assert "path is missing" in scan.problems["reason"].iloc[0]


def test_missing_values_in_parquet_and_podcast_tables(tmp_path, make_files):
    make_files(tmp_path, ["a.wav", "b.wav", "c.wav"])
    pd.DataFrame({"path": ["a.wav", "b.wav", "c.wav"], "speaker": ["x", "x", "y"],
                  "gender": ["M", None, "null"], "emotion": ["NaN", np.nan, "sad"]}
                 ).to_parquet(tmp_path / "t.parquet")
    df = load_corpus(f"csv:{tmp_path / 't.parquet'}")
    assert df["gender"].isna().tolist() == [False, True, True]
    assert df["emotion"].isna().tolist() == [True, True, False]
    root = tmp_path / "msp"
    make_files(root, ["Audios/MSP-PODCAST_0001_0001.wav", "Audios/MSP-PODCAST_0002_0001.wav"])
    (root / "Labels").mkdir()
    (root / "Labels/labels_consensus.csv").write_text(
        "FileName,EmoClass,SpkrID,Gender,Split_Set\n"
        "MSP-PODCAST_0001_0001.wav,N,NaN,Female,Train\n"
        "MSP-PODCAST_0002_0001.wav,null,N/A,N/A,N/A\n")
    msp = load_corpus(f"msp-podcast:{root}")
    assert msp["speaker"].tolist() == ["unknown-MSP-PODCAST_0001_0001",
                                       "unknown-MSP-PODCAST_0002_0001"]
    assert msp["emotion"].isna().tolist() == [False, True]


def test_unreadable_label_tables_name_the_fix(tmp_path, monkeypatch):
    import fairser.corpora._files as files

    table = tmp_path / "t.csv"
    table.write_bytes(b"path,speaker\n\xff\xfe.wav,x\n")
    with pytest.raises(CorpusError, match=r"t.csv: table: not UTF-8 text .*; save it as UTF-8"):
        load_corpus(f"csv:{table}")
    table.write_text("path,speaker\na.wav,x\n")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(table))

    monkeypatch.setattr(files.pd, "read_csv", deny)
    with pytest.raises(CorpusError) as err:
        load_corpus(f"csv:{table}")
    assert str(err.value) == (f"{table}: table: permission denied; make it readable "
                              f"(chmod a+r {table})")


def _suspicious(root) -> dict[str, str]:
    actor = root / "Actor_06"
    rng = np.random.default_rng(1)
    files = {
        "03-01-02-01-01-02-06.wav": (np.zeros(1600), "PCM_16"),
        "03-01-02-01-02-02-06.wav": (np.clip(4 * rng.standard_normal(1600), -1, 1), "PCM_16"),
        "03-01-02-02-01-02-06.wav": (3 * rng.standard_normal(1600), "FLOAT"),
    }
    for name, (x, subtype) in files.items():
        sf.write(str(actor / name), x, 16000, subtype=subtype)
    flac = actor / "03-01-02-02-02-02-06.flac"
    sf.write(str(flac), 0.2 * rng.standard_normal(48000), 16000)
    flac.write_bytes(flac.read_bytes()[:-150])  # cut inside its last frame
    return {"03-01-02-01-01-02-06.wav": "silent-audio",
            "03-01-02-01-02-02-06.wav": "clipped-audio",
            "03-01-02-02-01-02-06.wav": "out-of-range-audio",
            "03-01-02-02-02-02-06.flac": "truncated-audio"}


def test_sample_checks_only_when_asked_and_cached(ravdess_root, monkeypatch):
    import fairser.corpora._audiocheck as audiocheck

    expected = _suspicious(ravdess_root)
    spec = f"ravdess:{ravdess_root}"
    fast = scan_corpus(spec)  # header checks only: these files look fine from outside
    assert len(fast.problems) == 0 and not fast.audio_check
    calls = []
    real = audiocheck.check_audio
    monkeypatch.setattr(audiocheck, "check_audio", lambda p: calls.append(p) or real(p))
    scan = scan_corpus(spec, audio_check=True)
    assert _kinds(scan) == expected and scan.audio_check
    assert len(scan.manifest) == 96 and len(calls) == 100
    calls.clear()
    again = scan_corpus(spec, audio_check=True)  # unchanged files: verdicts from the cache
    assert calls == [] and _kinds(again) == expected
    pd.testing.assert_frame_equal(again.problems, scan.problems)
    silent = ravdess_root / "Actor_06" / "03-01-02-01-01-02-06.wav"
    sf.write(str(silent), 0.3 * np.sin(np.arange(1600) / 3), 16000)  # fixed: checked again
    fixed = scan_corpus(spec, audio_check=True)
    assert calls == [str(silent)] and "silent-audio" not in set(fixed.problems["kind"])
