"""The adapters on the real corpora in ../shared/data (run in CI, skipped elsewhere)."""

from __future__ import annotations

import time

import pytest

from fairser.corpora import load_corpus, scan_corpus, validate_manifest
from fairser.errors import CorpusError

pytestmark = pytest.mark.shared_data


def test_ravdess_real(shared_data):
    t0 = time.perf_counter()
    df = load_corpus(f"ravdess:{shared_data / 'ravdess'}")
    assert time.perf_counter() - t0 < 10.0  # headers only, never decoding
    validate_manifest(df)
    assert len(df) == 1440
    assert df["speaker"].nunique() == 24
    assert df.drop_duplicates("speaker")["gender"].value_counts().to_dict() == {"M": 12, "F": 12}
    counts = df.groupby(["emotion", "gender"]).size()
    assert counts["angry"].to_dict() == {"F": 96, "M": 96}
    assert counts["neutral"].to_dict() == {"F": 48, "M": 48}
    assert df["duration_s"].between(2.5, 6.0).all()
    assert (df["vocal_channel"] == "speech").all()


def test_casia_real(shared_data):
    df = load_corpus(f"casia:{shared_data / 'casia'}")
    assert len(df) == 1200 and df["speaker"].nunique() == 4
    assert df.groupby(["emotion", "gender"]).size().eq(100).all()
    assert df.groupby("emotion").ngroups == 6
    assert set(df["split"]) == {"train", "test"}


def test_emodb_real(shared_data):
    df = load_corpus(f"emodb:{shared_data / 'emodb'}")
    assert len(df) == 535 and df["speaker"].nunique() == 10
    assert df.drop_duplicates("speaker")["gender"].value_counts().to_dict() == {"M": 5, "F": 5}
    # this copy was cut or padded to 2.0 s (see ../shared/data/README.md)
    assert df["duration_s"].round(2).eq(2.0).all()
    assert set(df["emotion"]) == {"angry", "boredom", "disgust", "fear", "happy", "sad",
                                  "neutral"}


def test_ased_real(shared_data):
    """ASED as released: 2474 files, 65 speakers; five files carry the other gender code."""
    spec = f"ased:{shared_data / 'ased'}"
    scan = scan_corpus(spec)
    conflicts = scan.problems
    assert conflicts["kind"].tolist() == ["gender-conflict"] * 5
    assert sorted(zip(conflicts["code"], conflicts["utt_id"], strict=True)) == [
        ("09", "s4-01-02-02-09"), ("15", "f2-01-01-02-15"), ("21", "f2-07-02-02-21"),
        ("23", "s4-04-01-02-23"), ("25", "f2-02-01-02-25")]
    with pytest.raises(CorpusError, match="5 problem"):
        load_corpus(spec)
    fixed = scan_corpus(spec, options={"resolve_gender": "majority"})
    df = fixed.manifest
    validate_manifest(df)
    assert len(fixed.problems) == 0 and len(df) == 2474 and df["speaker"].nunique() == 65
    assert df.drop_duplicates("speaker")["gender"].value_counts().to_dict() == {"M": 40, "F": 25}
    assert fixed.resolved["resolved"].tolist() == ["F"] * 5
    assert set(df["emotion"]) == {"neutral", "fear", "happy", "sad", "angry"}
    upper = df.set_index("utt_id").loc["s4-04-02-01-29"]  # released as 04Sad/S4-04-02-01-29
    assert upper["path"].endswith("04Sad/S4-04-02-01-29.flac") and upper["emotion"] == "sad"
    assert df.groupby("speaker")["split"].nunique().max() == 1
    assert df.drop_duplicates("speaker").groupby("split")["gender"].nunique().eq(2).all()
