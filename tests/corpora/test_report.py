"""summarize(), save_manifest() and save_problems()."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.corpora import (
    coerce_manifest,
    empty_manifest,
    save_manifest,
    save_problems,
    scan_corpus,
    summarize,
)
from fairser.corpora._base import CorpusScan, problems_frame
from fairser.errors import CorpusError


def _manifest() -> pd.DataFrame:
    return coerce_manifest(pd.DataFrame({
        "corpus": ["c"] * 4, "utt_id": list("abcd"), "path": ["/a", "/b", "/c", "/d"],
        "speaker": ["s1", "s1", "s2", "s3"], "gender": ["M", "M", "F", None],
        "emotion": ["sad", None, "sad", "angry"], "split": ["train", "train", None, "test"],
        "language": ["en", "en", "en", "de"], "duration_s": [1.0, 2.0, 3.0, 3600.0],
    }))


def test_summarize_counts_everything():
    s = summarize(CorpusScan(manifest=_manifest(), problems=problems_frame([]), spec="c:/x"))
    assert s["speakers"] == {"total": 3, "M": 1, "F": 1, "unknown": 1}
    assert s["utterances_by_gender"] == {"M": 2, "F": 1, "unknown": 1}
    assert s["emotions"] == {"sad": {"M": 1, "F": 1, "unknown": 0, "total": 2},
                             "angry": {"M": 0, "F": 0, "unknown": 1, "total": 1},
                             "unlabelled": {"M": 1, "F": 0, "unknown": 0, "total": 1}}
    assert s["splits"] == {
        "train": {"utterances": 2, "speakers": 1, "speakers_M": 1, "speakers_F": 0},
        "test": {"utterances": 1, "speakers": 1, "speakers_M": 0, "speakers_F": 0},
        "unassigned": {"utterances": 1, "speakers": 1, "speakers_M": 0, "speakers_F": 1}}
    assert s["languages"] == {"en": 3, "de": 1}
    assert s["hours"] == pytest.approx(1.002)
    assert s["duration_s"] == {"total": 3606.0, "mean": 901.5, "min": 1.0, "max": 3600.0}


def test_summarize_empty_and_problem_rows(ravdess_root):
    (ravdess_root / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(b"junk")
    s = summarize(scan_corpus(f"ravdess:{ravdess_root}"))
    assert s["problems"]["total"] == 1
    row = s["problems"]["rows"][0]
    assert (row["kind"], row["utt_id"], row["line"], row["source"]) == \
        ("unreadable-audio", "03-01-01-01-01-01-01", None, None)
    empty = summarize(CorpusScan(manifest=empty_manifest(), problems=problems_frame([]),
                                 spec="c:/x"))
    assert empty["utterances"] == 0 and empty["corpus"] is None
    assert empty["duration_s"]["mean"] is None


def test_save_manifest_validates_and_is_atomic(tmp_path):
    out = save_manifest(_manifest(), tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), _manifest())
    bad = _manifest()
    bad.loc[0, "emotion"] = "furious"
    with pytest.raises(CorpusError, match="emotion='furious'"):
        save_manifest(bad, tmp_path / "bad.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.parquet"]
    with pytest.raises(CorpusError, match="does not exist; create it first"):
        save_problems(problems_frame([]), tmp_path / "no" / "x.csv")


def test_save_manifest_to_a_folder_is_a_corpus_error(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(CorpusError, match=r"out: is a folder, not a file; pass a file path"):
        save_manifest(_manifest(), folder)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
