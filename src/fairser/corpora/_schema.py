"""The manifest schema: columns, canonical vocabularies, normalisation and validation.

A manifest is a :class:`pandas.DataFrame` with one row per utterance and these columns, in this
order, followed by any corpus-specific extras (age, intensity, text id, ...):

=========== ======= ==========================================================================
column      dtype   values
=========== ======= ==========================================================================
corpus      string  corpus name, e.g. ``ravdess``
utt_id      string  unique within the corpus
path        string  absolute path of the audio file
speaker     string  unique within the corpus
gender      string  ``M``, ``F`` or ``<NA>``
emotion     string  one of :data:`EMOTIONS` or ``<NA>``
split       string  ``train``, ``dev``, ``test`` or ``<NA>``
language    string  BCP-47-ish code, e.g. ``en``, ``zh``, ``de``
duration_s  float64 seconds
=========== ======= ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from fairser.errors import CorpusError

__all__ = [
    "COLUMNS",
    "EMOTIONS",
    "coerce_manifest",
    "GENDERS",
    "MISSING_VALUES",
    "SPLITS",
    "empty_manifest",
    "is_missing",
    "normalise_gender",
    "normalise_split",
    "utt_key",
    "validate_manifest",
]

#: Required manifest columns, in order.
COLUMNS: tuple[str, ...] = (
    "corpus", "utt_id", "path", "speaker", "gender", "emotion", "split", "language", "duration_s",
)

#: Canonical emotion vocabulary shared by every corpus.
EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise", "contempt",
    "boredom", "other",
)

#: Gender codes of the manifest (missing gender is ``<NA>``).
GENDERS: tuple[str, ...] = ("M", "F")

#: Split names of the manifest (no split is ``<NA>``).
SPLITS: tuple[str, ...] = ("train", "dev", "test")

#: Spellings of a missing value (compared stripped and lower-case). A cell holding one of them
#: is missing wherever it appears (speaker, gender, emotion, split, language, path, extras),
#: never a real speaker, gender or emotion.
MISSING_VALUES: frozenset[str] = frozenset({
    "", "nan", "na", "n/a", "n.a.", "<na>", "nat", "none", "null", "nil", "#n/a", "#na",
    "missing", "unknown", "unk", "?", "-", "--",
})

_STRING_COLUMNS = COLUMNS[:-1]

# Spellings accepted for each gender (compared lower-case, stripped). Anything else is an error.
_GENDER_SPELLINGS: Mapping[str, str | None] = {
    "m": "M", "male": "M", "man": "M", "men": "M", "masculine": "M", "boy": "M",
    "f": "F", "female": "F", "woman": "F", "women": "F", "feminine": "F", "girl": "F", "w": "F",
    "u": None, "x": None,
}

_SPLIT_SPELLINGS: Mapping[str, str | None] = {
    "train": "train", "training": "train", "trn": "train",
    "dev": "dev", "development": "dev", "valid": "dev", "validation": "dev", "val": "dev",
    "test": "test", "testing": "test", "tst": "test", "eval": "test", "evaluation": "test",
}


def is_missing(value: object) -> bool:
    """Return whether ``value`` is a missing value: ``None``, NaN, ``pd.NA`` or a spelling of
    :data:`MISSING_VALUES` (``"NaN"``, ``"N/A"``, ``"null"``, ``"  "``...)."""
    kind = type(value)
    if kind is str:  # the common cases first: this runs for every cell of a corpus
        return value.strip().lower() in MISSING_VALUES
    if kind is float:
        return value != value  # NaN
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, str) and value.strip().lower() in MISSING_VALUES


def utt_key(corpus: str, utt_id: str) -> str:
    """Return the unique key of an utterance across corpora: ``"{corpus}/{utt_id}"``.

    Parameters
    ----------
    corpus : str
        Corpus name (the manifest's ``corpus`` column).
    utt_id : str
        Utterance id, unique within the corpus.

    Returns
    -------
    str
        The key used by feature stores and predictions.
    """
    return f"{corpus}/{utt_id}"


def normalise_gender(value: object, *, extra: Mapping[str, str | None] | None = None) -> str | None:
    """Map a gender spelling to ``"M"``, ``"F"`` or ``None`` (missing).

    Parameters
    ----------
    value : object
        A raw value: ``"Male"``, ``"f"``, ``"Unknown"``, ``None``, ``NaN``, ... (every
        spelling of :data:`MISSING_VALUES` is missing, whatever ``extra`` says)
    extra : mapping, optional
        Further spellings (lower-case keys) to ``"M"``, ``"F"`` or ``None``; they win over the
        built-in spellings.

    Returns
    -------
    str or None
        ``"M"``, ``"F"``, or ``None`` for an explicitly missing value.

    Raises
    ------
    KeyError
        If the spelling is not recognised (callers turn it into a :class:`CorpusError` that
        names the file and row).
    """
    if is_missing(value):
        return None
    key = str(value).strip().lower()
    if extra:
        lowered = {str(k).strip().lower(): v for k, v in extra.items()}
        if key in lowered:
            return lowered[key]
    if key in _GENDER_SPELLINGS:
        return _GENDER_SPELLINGS[key]
    raise KeyError(str(value))


def normalise_split(value: object, *, extra: Mapping[str, str | None] | None = None) -> str | None:
    """Map a split spelling (``Train``, ``Development``, ``Test1``...) to train/dev/test/None.

    ``Test`` followed by digits (MSP-Podcast's ``Test1``, ``Test2``, ``Test3``) maps to ``test``
    unless ``extra`` says otherwise.

    Raises
    ------
    KeyError
        If the spelling is not recognised.
    """
    if is_missing(value):
        return None
    raw = str(value).strip()
    key = raw.lower()
    if extra:
        lowered = {str(k).strip().lower(): v for k, v in extra.items()}
        if key in lowered:
            return lowered[key]
    if key in _SPLIT_SPELLINGS:
        return _SPLIT_SPELLINGS[key]
    if key.startswith("test") and key[4:].isdigit():
        return "test"
    raise KeyError(raw)


def empty_manifest() -> pd.DataFrame:
    """Return a manifest with the schema's columns and dtypes and no rows."""
    data = {c: pd.Series([], dtype="string") for c in _STRING_COLUMNS}
    data["duration_s"] = pd.Series([], dtype="float64")
    return pd.DataFrame(data, columns=list(COLUMNS))


def coerce_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with the schema's columns first and the schema's dtypes applied.

    Missing values in text columns become ``pd.NA``; extra columns keep their order after the
    schema's columns. The input is not modified.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CorpusError(
            f"manifest: missing column(s) {', '.join(missing)}; a manifest needs "
            f"{', '.join(COLUMNS)}"
        )
    out = df.copy()
    for col in _STRING_COLUMNS:
        out[col] = out[col].astype("string")
    out["duration_s"] = pd.to_numeric(out["duration_s"], errors="coerce").astype("float64")
    extras = [c for c in out.columns if c not in COLUMNS]
    for col in extras:  # text extras -> "string", integers -> Int64, other numbers -> float64
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            converted = out[col].convert_dtypes()
            if str(converted.dtype) in ("string", "Int64"):
                out[col] = converted
            elif str(converted.dtype) == "Float64":
                out[col] = converted.astype("float64")
        elif pd.api.types.is_integer_dtype(out[col].dtype):
            out[col] = out[col].astype("Int64")
    return out[list(COLUMNS) + extras].reset_index(drop=True)


def validate_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """Check that ``df`` follows the manifest schema and return it unchanged.

    Checks: column order and dtypes; no missing corpus, utt_id, path, speaker or language;
    gender, emotion and split values from their vocabularies; ``(corpus, utt_id)`` unique;
    every speaker of a corpus has one gender; durations finite and positive.

    Parameters
    ----------
    df : pandas.DataFrame
        The manifest to check.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself.

    Raises
    ------
    CorpusError
        On the first violation, naming the column, the row and the fix.
    """
    if not isinstance(df, pd.DataFrame):
        raise CorpusError(f"manifest: expected a pandas DataFrame, got {type(df).__name__}")
    head = list(df.columns[: len(COLUMNS)])
    if head != list(COLUMNS):
        raise CorpusError(
            f"manifest: columns start with {head}, expected {list(COLUMNS)}; "
            "rebuild it with fairser.corpora.load_corpus or fairser.corpora.coerce_manifest"
        )
    for col in _STRING_COLUMNS:
        if str(df[col].dtype) != "string":
            raise CorpusError(
                f"manifest: column {col!r} has dtype {df[col].dtype}, expected 'string'; "
                "apply fairser.corpora.coerce_manifest"
            )
    if str(df["duration_s"].dtype) != "float64":
        raise CorpusError(
            f"manifest: column 'duration_s' has dtype {df['duration_s'].dtype}, expected float64;"
            " apply fairser.corpora.coerce_manifest"
        )
    for col in ("corpus", "utt_id", "path", "speaker", "language"):
        bad = np.flatnonzero(df[col].isna().to_numpy())
        if bad.size:
            raise CorpusError(
                f"manifest row {int(bad[0])}: column {col!r} is missing ({bad.size} row(s)); "
                "every utterance needs it"
            )
    _check_vocab(df, "gender", GENDERS)
    _check_vocab(df, "emotion", EMOTIONS)
    _check_vocab(df, "split", SPLITS)
    dur = df["duration_s"].to_numpy()
    bad = np.flatnonzero(~np.isfinite(dur) | (dur <= 0))
    if bad.size:
        r = int(bad[0])
        raise CorpusError(
            f"manifest row {r} ({df['path'].iloc[r]}): duration_s={float(dur[r])!r} is not a "
            "positive number; remove the empty or unreadable file"
        )
    dup = df.duplicated(["corpus", "utt_id"], keep="first").to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        raise CorpusError(
            f"manifest row {r}: utt_id {df['utt_id'].iloc[r]!r} of corpus "
            f"{df['corpus'].iloc[r]!r} appears more than once ({int(dup.sum())} duplicate(s)); "
            "utt_id must be unique within a corpus"
        )
    known = df.dropna(subset=["gender"])
    n_gender = known.groupby(["corpus", "speaker"], sort=True)["gender"].nunique()
    two = n_gender[n_gender > 1]
    if len(two):
        corpus, speaker = two.index[0]
        raise CorpusError(
            f"manifest: speaker {speaker!r} of corpus {corpus!r} has both genders; "
            "fix the gender of that speaker's rows"
        )
    return df


def _check_vocab(df: pd.DataFrame, col: str, vocab: Iterable[str]) -> None:
    vals = df[col]
    bad = vals.notna() & ~vals.isin(list(vocab))
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise CorpusError(
            f"manifest row {r}: {col}={vals.iloc[r]!r} is not one of {', '.join(vocab)} "
            f"({int(bad.sum())} row(s)); map it with the corpus label map"
        )
