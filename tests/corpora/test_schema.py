"""Manifest schema: coercion, validation, gender and split normalisation, utt_key."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.corpora import (
    COLUMNS,
    coerce_manifest,
    empty_manifest,
    normalise_gender,
    utt_key,
    validate_manifest,
)
from fairser.corpora._schema import normalise_split
from fairser.errors import CorpusError


def _manifest(**over) -> pd.DataFrame:
    data = {
        "corpus": ["c", "c", "c"], "utt_id": ["a", "b", "c"], "path": ["/a", "/b", "/c"],
        "speaker": ["s1", "s1", "s2"], "gender": ["M", "M", None],
        "emotion": ["angry", None, "sad"], "split": ["train", "dev", None],
        "language": ["en"] * 3, "duration_s": [1.0, 2.0, 0.5], "age": [30, 30, 41],
    }
    data.update(over)
    return coerce_manifest(pd.DataFrame(data))


def test_coerce_gives_schema_order_and_dtypes():
    df = _manifest()
    assert list(df.columns) == [*COLUMNS, "age"]
    assert all(str(df[c].dtype) == "string" for c in COLUMNS[:-1])
    assert str(df["duration_s"].dtype) == "float64"
    assert df["gender"].isna().tolist() == [False, False, True]
    assert df["gender"].iloc[2] is pd.NA
    assert validate_manifest(df) is df


def test_empty_manifest_validates():
    df = empty_manifest()
    assert list(df.columns) == list(COLUMNS) and len(df) == 0
    validate_manifest(df)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"gender": ["M", "X", None]}, "manifest row 1: gender='X' is not one of M, F"),
        ({"emotion": ["angry", "furious", None]}, "emotion='furious' is not one of"),
        ({"split": ["train", "validation", None]}, "split='validation' is not one of"),
        ({"utt_id": ["a", "a", "c"]}, "manifest row 1: utt_id 'a' of corpus 'c' appears more"),
        ({"gender": ["M", "F", None]}, "speaker 's1' of corpus 'c' has both genders"),
        ({"duration_s": [1.0, 0.0, 1.0]}, "manifest row 1 (/b): duration_s=0.0 is not a positive"),
        ({"speaker": ["s1", None, "s2"]}, "manifest row 1: column 'speaker' is missing"),
    ],
)
def test_validate_rejects(over, message):
    with pytest.raises(CorpusError) as err:
        validate_manifest(_manifest(**over))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_validate_rejects_wrong_order_and_dtype():
    df = _manifest()
    with pytest.raises(CorpusError, match="columns start with"):
        validate_manifest(df[["utt_id", *[c for c in df.columns if c != "utt_id"]]])
    bad = df.copy()
    bad["speaker"] = bad["speaker"].astype(object)
    with pytest.raises(CorpusError, match="column 'speaker' has dtype object"):
        validate_manifest(bad)
    with pytest.raises(CorpusError, match="missing column"):
        coerce_manifest(df.drop(columns=["language"]))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Male", "M"), ("female", "F"), (" F ", "F"), ("m", "M"), ("Unknown", None), ("", None),
     (None, None), (float("nan"), None), (pd.NA, None), ("WOMAN", "F")],
)
def test_normalise_gender(raw, expected):
    assert normalise_gender(raw) == expected


def test_normalise_gender_unknown_and_extra():
    with pytest.raises(KeyError):
        normalise_gender("other")
    assert normalise_gender("Weiblich", extra={"weiblich": "F"}) == "F"


def test_normalise_split():
    assert [normalise_split(s) for s in ("Train", "Development", "Test1", "Test3", None)] == \
        ["train", "dev", "test", "test", None]
    with pytest.raises(KeyError):
        normalise_split("holdout")
    assert normalise_split("holdout", extra={"Holdout": "test"}) == "test"


def test_utt_key():
    assert utt_key("ravdess", "03-01-01-01-01-01-01") == "ravdess/03-01-01-01-01-01-01"
