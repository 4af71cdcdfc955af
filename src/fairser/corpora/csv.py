"""Any table of utterances: ``csv:TABLE`` with user-named columns.

``TABLE`` is a ``.csv``, ``.tsv`` or ``.parquet`` file (an exported manifest reads back as
is). One row per utterance; columns are found by the names in the ``columns`` option, which
default to the manifest's own names:

=========  ========  ====================================================================
field      required  meaning
=========  ========  ====================================================================
path       yes       audio file, absolute or relative to ``audio_root`` (default: the
                     table's folder)
speaker    yes       speaker id
utt_id     no        default: the path relative to ``audio_root`` without its extension
gender     no        any spelling :func:`fairser.corpora.normalise_gender` knows, or
                     ``gender_map``; without the column every gender is ``<NA>``
emotion    no        canonical names (plus fearful, surprised, happiness, sadness, anger,
                     disgusted) or codes mapped with ``label_map``; without it ``<NA>``
split      no        train/dev/test spellings or ``split_map``; without it (or when every
                     value is empty) a speaker-disjoint split is assigned
language   no        per-row language; else the ``language`` option
=========  ========  ====================================================================

Every other column is kept as an extra (numbers become numeric columns) unless
``keep_extra=False``. The ``name`` option sets the manifest's ``corpus`` value.

In every column, whatever ``columns`` maps it to, a missing-value spelling (empty, blanks,
``NaN``, ``NA``, ``N/A``, ``None``, ``null``, ``unknown``...: see
:data:`fairser.corpora.MISSING_VALUES`) is a missing value, never a speaker, gender or emotion
of its own: a row without a path or speaker is a ``bad-row`` problem, a missing gender,
emotion or split is ``<NA>``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import Field, field_validator

from fairser.corpora._base import (
    Adapter,
    CorpusOptions,
    Problem,
    RawUtterance,
    read_label_table,
)
from fairser.corpora._schema import COLUMNS as MANIFEST_COLUMNS
from fairser.corpora._schema import EMOTIONS, is_missing
from fairser.errors import CorpusError

__all__ = ["ADAPTER", "CsvOptions", "LABEL_MAP"]

#: Default label map: the canonical names and a few common spellings.
LABEL_MAP: dict[str, str | None] = {
    **{e: e for e in EMOTIONS},
    "fearful": "fear", "surprised": "surprise", "happiness": "happy", "sadness": "sad",
    "anger": "angry", "disgusted": "disgust",
}

_FIELDS = ("path", "utt_id", "speaker", "gender", "emotion", "split", "language")


class CsvOptions(CorpusOptions):
    """Options of the ``csv`` adapter."""

    name: str = Field(default="csv", min_length=1,
                      description="Corpus name written to the manifest's corpus column.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Field -> column name of the table (fields: path, utt_id, speaker, "
        "gender, emotion, split, language); unset fields use their own name.",
    )
    audio_root: str | None = Field(
        default=None, description="Folder relative paths are resolved against (default: the "
        "table's folder).")
    language: str = Field(default="und", min_length=1,
                          description="Language code of rows without a language column.")
    sep: str | None = Field(default=None, description="Field separator (default: tab for "
                            ".tsv/.tab, else comma).")
    keep_extra: bool = Field(default=True,
                             description="Keep the table's other columns as extras.")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(value) - set(_FIELDS))
        if bad:
            raise ValueError(f"unknown field(s) {bad}; known fields are {list(_FIELDS)}")
        return value


def _read(table: Path, opts: CsvOptions) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Return the table as text cells, plus the typed table for parquet input."""
    if table.suffix.lower() == ".parquet":
        native = read_label_table(table, what="table", parquet=True)
        text = native.astype(object).where(native.notna(), "").astype(str)
        return text, native
    sep = opts.sep or ("\t" if table.suffix.lower() in (".tsv", ".tab") else ",")
    return read_label_table(table, what="table", sep=sep), None


def _extra_value(series: pd.Series) -> pd.Series:
    """Text cells -> numbers when every filled cell is a number without a leading zero.

    Missing-value spellings (``""``, ``NaN``, ``N/A``, ``null``...) become ``<NA>``.
    """
    values = series.where(~series.map(is_missing), pd.NA)
    filled = values.dropna().astype(str)
    if filled.str.match(r"^-?0\d").any():  # codes such as "01" stay text
        return values
    numeric = pd.to_numeric(values, errors="coerce")
    if len(filled) and numeric.notna().sum() == len(filled):
        return numeric
    return values


def scan(root: Path, opts: CsvOptions) -> tuple[list[RawUtterance], list[Problem]]:
    """Read the table at ``root`` (a file) into raw records."""
    table = Path(root).expanduser()
    if not table.is_file():
        raise CorpusError(f"csv:{table}: table not found; pass csv:PATH with a .csv, .tsv or "
                          ".parquet file")
    table = table.resolve()
    df, native = _read(table, opts)
    cols = {f: opts.columns.get(f, f) for f in _FIELDS}
    missing = [cols[f] for f in ("path", "speaker") if cols[f] not in df.columns]
    if missing:
        raise CorpusError(
            f"{table}: missing column(s) {', '.join(missing)}; rename them or map them with "
            "the columns option, e.g. columns={\"path\": \"file\"}"
        )
    if not len(df):
        raise CorpusError(f"{table}: the table has no rows; add one row per utterance")
    base = Path(opts.audio_root).expanduser() if opts.audio_root else table.parent
    if not base.is_absolute():
        base = table.parent / base
    used = {c for f, c in cols.items() if c in df.columns}
    skip = set(MANIFEST_COLUMNS) | used
    extras: dict[str, pd.Series] = {}
    if opts.keep_extra:
        for c in df.columns:
            if c not in skip:
                extras[c] = native[c] if native is not None else _extra_value(df[c])
    has = {f: cols[f] in df.columns for f in _FIELDS}
    records: list[RawUtterance] = []
    problems: list[Problem] = []
    def cell(row: dict, field: str) -> str | None:
        """The cell of ``field`` stripped, or None when absent or a missing-value spelling."""
        value = row[cols[field]] if has[field] else None
        return None if is_missing(value) else str(value).strip()

    for i, row in enumerate(df.to_dict("records")):
        raw_path = cell(row, "path")
        if raw_path is None:
            problems.append(Problem(
                kind="bad-row", path=str(table), source=str(table), line=i + 2,
                code=str(row[cols["path"]]),
                reason=f"path is missing ({row[cols['path']]!r}); fill in the cell or drop "
                "the row"))
            continue
        path = Path(raw_path).expanduser()
        path = path if path.is_absolute() else base / path
        if cell(row, "utt_id") is not None:
            utt_id = cell(row, "utt_id")
        else:
            try:
                utt_id = path.relative_to(base).with_suffix("").as_posix()
            except ValueError:
                utt_id = path.with_suffix("").as_posix().lstrip("/")
        extra = {c: (None if pd.isna(v.iloc[i]) else v.iloc[i]) for c, v in extras.items()}
        if cell(row, "language") is not None:
            extra["language"] = cell(row, "language")
        records.append(RawUtterance(
            utt_id=utt_id, path=path, speaker=row[cols["speaker"]].strip(),
            gender=cell(row, "gender"), emotion=cell(row, "emotion"), split=cell(row, "split"),
            source=str(table), line=i + 2, extras=extra,
        ))
    return records, problems


ADAPTER = Adapter(
    name="csv", scan=scan, options=CsvOptions, label_map=lambda opts: LABEL_MAP,
    language="und", official_splits=True,
    description="any CSV/TSV/parquet table with user-named columns",
)
