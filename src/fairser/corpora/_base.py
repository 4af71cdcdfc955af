"""Machinery shared by every corpus adapter.

An adapter only *scans*: it walks its folder or label file and yields :class:`RawUtterance`
records with the corpus's own codes (emotion code, gender spelling, split name) plus
:class:`Problem` records for what it could not parse. :func:`build_manifest` does the rest the
same way for every corpus: label maps, gender and split normalisation, audio headers (durations,
missing or unreadable files), duplicate ids, speakers with two genders, the split assignment for
corpora without official splits, and the final typed, validated manifest.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fairser.audio import AUDIO_EXTENSIONS, audio_info
from fairser.corpora._schema import (
    COLUMNS,
    EMOTIONS,
    coerce_manifest,
    normalise_gender,
    normalise_split,
    validate_manifest,
)
from fairser.errors import AudioError, ConfigError, CorpusError

__all__ = [
    "Adapter",
    "CorpusOptions",
    "CorpusScan",
    "PROBLEM_COLUMNS",
    "Problem",
    "RawUtterance",
    "assign_splits",
    "build_manifest",
    "find_audio",
    "parse_options",
]

#: Columns of the problems table (``CorpusScan.problems``, the ``--skip-bad`` CSV).
PROBLEM_COLUMNS: tuple[str, ...] = ("kind", "path", "source", "line", "utt_id", "code", "reason")

#: Problem kinds, in the order they are reported.
PROBLEM_KINDS: tuple[str, ...] = (
    "unknown-emotion", "unknown-gender", "unknown-split", "bad-name", "bad-row",
    "missing-audio", "unreadable-audio", "empty-audio", "duplicate", "gender-conflict",
)

_LIST_PER_GROUP = 5


class CorpusOptions(BaseModel):
    """Options every corpus accepts (adapters subclass it to add their own).

    Unknown keys are errors. Pass them as ``load_corpus(spec, options={...})`` or on the command
    line as ``--option key=value`` (values parsed as JSON when they parse).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="Emotion codes of the corpus -> canonical emotion (or null for an explicit "
        "<NA>), merged over the adapter's default map; codes match case-sensitively.",
    )
    gender_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="Extra gender spellings -> 'M', 'F' or null (missing), merged over the "
        "built-in spellings (Male/Female/M/F/Unknown...); keys are compared lower-case.",
    )
    split_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="Extra split names -> 'train', 'dev', 'test' or null, merged over the "
        "built-in names (Train/Development/Test1...).",
    )
    seed: int = Field(
        default=0,
        description="Seed of the speaker-disjoint split assigned to corpora without official "
        "splits.",
    )
    split_fractions: tuple[float, float, float] = Field(
        default=(0.7, 0.15, 0.15),
        description="Target train/dev/test shares of speakers per gender for corpora without "
        "official splits (see fairser.corpora.assign_splits).",
    )

    @field_validator("label_map")
    @classmethod
    def _canonical_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = sorted({str(v) for v in value.values() if v is not None and v not in EMOTIONS})
        if bad:
            raise ValueError(
                f"label_map targets {bad} are not canonical emotions ({', '.join(EMOTIONS)})"
            )
        return value

    @field_validator("gender_map")
    @classmethod
    def _gender_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = sorted({str(v) for v in value.values() if v not in ("M", "F", None)})
        if bad:
            raise ValueError(f"gender_map targets {bad} must be 'M', 'F' or null")
        return value

    @field_validator("split_map")
    @classmethod
    def _split_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = sorted({str(v) for v in value.values() if v not in ("train", "dev", "test", None)})
        if bad:
            raise ValueError(f"split_map targets {bad} must be 'train', 'dev', 'test' or null")
        return value

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in value) or value[0] <= 0 or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("split_fractions must be three non-negative shares summing to 1 "
                             "with a positive train share")
        return value


@dataclass(frozen=True)
class RawUtterance:
    """One utterance as an adapter found it, with the corpus's own codes.

    Attributes
    ----------
    utt_id : str
        Id unique within the corpus (usually the file stem).
    path : Path
        Audio file (need not exist: a missing file becomes a problem).
    speaker : str
        Speaker id.
    gender : object
        Raw gender spelling (normalised later), ``None`` when unknown.
    emotion : str or None
        Raw emotion code looked up in the label map, ``None`` for no label.
    split : object
        Raw split name, or ``None`` when the corpus has no official split.
    extras : dict
        Further columns (age, intensity, text id...).
    source : str or None
        Label file the row came from (``None`` for file-name-coded corpora).
    line : int or None
        Line of ``source`` (1 = header line).
    """

    utt_id: str
    path: Path
    speaker: str
    gender: object
    emotion: str | None
    split: object = None
    extras: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Problem:
    """Something wrong with one utterance (or one file an adapter could not parse).

    Attributes
    ----------
    kind : str
        One of :data:`PROBLEM_KINDS`.
    path : str
        Audio file concerned.
    reason : str
        What is wrong and how to fix it.
    source : str or None
        Label file, when the row came from one.
    line : int or None
        Line of ``source``.
    utt_id : str or None
        Utterance id when known.
    code : str or None
        The offending value (unknown emotion code, gender spelling, speaker...), if any.
    """

    kind: str
    path: str
    reason: str
    source: str | None = None
    line: int | None = None
    utt_id: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class CorpusScan:
    """A manifest of the good rows plus every problem found.

    Attributes
    ----------
    manifest : pandas.DataFrame
        Validated manifest of the rows without problems.
    problems : pandas.DataFrame
        One row per problem, columns :data:`PROBLEM_COLUMNS`; its rows are the skipped ones.
    spec : str
        The ``KIND:ROOT`` spec scanned.
    """

    manifest: pd.DataFrame
    problems: pd.DataFrame
    spec: str

    def raise_for_problems(self) -> None:
        """Raise one :class:`CorpusError` summarising every problem, if there is any."""
        if len(self.problems):
            raise CorpusError(describe_problems(self.problems, spec=self.spec))


ScanFn = Callable[[Path, Any], tuple[list[RawUtterance], list[Problem]]]


@dataclass(frozen=True)
class Adapter:
    """A corpus kind: how to scan it and what its codes mean.

    Attributes
    ----------
    name : str
        Corpus kind and the manifest's ``corpus`` value.
    scan : callable
        ``scan(root, options) -> (records, problems)``.
    options : type
        :class:`CorpusOptions` subclass holding the adapter's options.
    label_map : callable
        ``label_map(options) -> dict`` of the default emotion codes.
    language : str
        Default language code.
    official_splits : bool
        Whether the corpus ships its own splits (otherwise :func:`assign_splits` runs).
    description : str
        One line for help texts.
    """

    name: str
    scan: ScanFn
    options: type[CorpusOptions]
    label_map: Callable[[Any], Mapping[str, str | None]]
    language: str
    official_splits: bool
    description: str


def parse_options(cls: type[CorpusOptions], options: Mapping[str, Any] | None, *,
                  kind: str) -> CorpusOptions:
    """Validate ``options`` against ``cls``; unknown keys and bad values raise ConfigError."""
    if isinstance(options, cls):
        return options
    try:
        return cls.model_validate(dict(options or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "options"
        msg = first.get("msg", "invalid value")
        if first.get("type") == "extra_forbidden":
            known = ", ".join(sorted(cls.model_fields))
            raise ConfigError(
                f"{kind} options: unknown key {where!r}; known keys are {known}"
            ) from None
        raise ConfigError(f"{kind} options: {where}: {msg}; fix the option value") from None


def find_audio(root: Path, *, pattern: str = "**/*") -> list[Path]:
    """Return the audio files under ``root`` matching ``pattern``, sorted.

    Any extension of :data:`fairser.audio.AUDIO_EXTENSIONS` counts (case-insensitive); hidden
    files (``._name`` AppleDouble files included) are ignored.
    """
    exts = set(AUDIO_EXTENSIONS)
    return sorted(
        p for p in root.glob(pattern)
        if p.suffix.lower() in exts and not p.name.startswith(".") and p.is_file()
    )


def require_root(root: Path, kind: str) -> Path:
    """Return ``root`` resolved, or raise CorpusError when it is not a folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(
            f"{kind}:{root}: corpus folder not found; pass KIND:ROOT with the folder that "
            "holds the corpus"
        )
    return root.resolve()


def build_manifest(adapter: Adapter, root: Path, opts: CorpusOptions,
                   records: Sequence[RawUtterance], problems: Sequence[Problem], *,
                   spec: str, language: str | None = None,
                   progress: bool = False) -> CorpusScan:
    """Turn an adapter's raw records into a validated manifest plus a problems table.

    Parameters
    ----------
    adapter : Adapter
        The corpus kind (name, default label map, official splits or not).
    root : Path
        Corpus root (for messages).
    opts : CorpusOptions
        Parsed options (label, gender and split maps; split seed and fractions).
    records : sequence of RawUtterance
        What the adapter found.
    problems : sequence of Problem
        What the adapter could not parse.
    spec : str
        ``KIND:ROOT`` used in messages.
    language : str, optional
        Language code of every row (default: the adapter's); a record's ``extras`` may carry
        its own ``language``.
    progress : bool, default=False
        Show a rich progress bar (on stderr) while reading audio headers.

    Returns
    -------
    CorpusScan
        Manifest of the good rows and the problems (empty when all is well).

    Raises
    ------
    CorpusError
        When the corpus yields no utterance at all.
    """
    if not records and not problems:
        raise CorpusError(
            f"{spec}: no utterances found under {root}; check the folder and that it holds "
            f"the {adapter.name} layout"
        )
    label_map: dict[str, str | None] = {**adapter.label_map(opts), **opts.label_map}
    corpus = str(getattr(opts, "name", None) or adapter.name)
    problems = list(problems)
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    lang = language or getattr(opts, "language", None) or adapter.language
    for rec in _track(records, progress, f"reading {len(records)} audio headers"):
        path = str(Path(rec.path).absolute())

        def add(kind: str, reason: str, code: str | None = None, rec: RawUtterance = rec,
                path: str = path) -> None:
            problems.append(Problem(kind=kind, path=path, reason=reason, source=rec.source,
                                    line=rec.line, utt_id=rec.utt_id, code=code))

        bad = False
        emotion: str | None = None
        if rec.emotion is not None:
            code = str(rec.emotion).strip()
            if code in label_map:
                emotion = label_map[code]
            else:
                add("unknown-emotion", f"unknown emotion code {code!r}; map it to a canonical "
                    "emotion with the label_map option", code)
                bad = True
        try:
            gender = normalise_gender(rec.gender, extra=opts.gender_map)
        except KeyError:
            add("unknown-gender", f"unknown gender {str(rec.gender)!r}; map it to M, F or null "
                "with the gender_map option", str(rec.gender))
            bad = True
            gender = None
        try:
            split = normalise_split(rec.split, extra=opts.split_map)
        except KeyError:
            add("unknown-split", f"unknown split {str(rec.split)!r}; map it to train, dev, test "
                "or null with the split_map option", str(rec.split))
            bad = True
            split = None
        if rec.utt_id in seen:
            add("duplicate", f"utt_id {rec.utt_id!r} already used by {seen[rec.utt_id]}; "
                "remove or rename one of the files", rec.utt_id)
            continue
        seen[rec.utt_id] = path
        try:
            duration = audio_info(path).duration_s
        except AudioError as exc:
            kind = "missing-audio" if not os.path.isfile(path) else "unreadable-audio"
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(path) else str(exc)
            add(kind, reason)
            continue
        if duration <= 0:
            add("empty-audio", "audio file holds no samples; remove it from the corpus")
            continue
        if bad:
            continue
        row = {
            "corpus": corpus, "utt_id": rec.utt_id, "path": path, "speaker": rec.speaker,
            "gender": gender, "emotion": emotion, "split": split, "language": lang,
            "duration_s": float(duration), "_source": rec.source, "_line": rec.line,
        }
        for key, value in rec.extras.items():
            if key == "language" or key not in COLUMNS:
                row[key] = value
        rows.append(row)

    rows, conflict = _drop_gender_conflicts(rows)
    problems.extend(conflict)
    for r in rows:
        del r["_source"], r["_line"]
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(COLUMNS))
    df = coerce_manifest(df)
    if len(df) and (not adapter.official_splits or df["split"].isna().all()):
        df = assign_splits(df, seed=opts.seed, fractions=opts.split_fractions)
    validate_manifest(df)
    return CorpusScan(manifest=df, problems=problems_frame(problems), spec=spec)


def _track(items: Sequence[RawUtterance], enabled: bool, label: str):
    if not enabled:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
    if not console.is_terminal:  # no bar (and no stray blank line) in logs and pipes
        yield from items
        return
    yield from track(items, description=label, transient=True, console=console)


def _drop_gender_conflicts(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                 list[Problem]]:
    genders: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["gender"] is not None:
            genders[r["speaker"]].add(r["gender"])
    conflicted = {s for s, g in genders.items() if len(g) > 1}
    if not conflicted:
        return rows, []
    keep, problems = [], []
    for r in rows:
        if r["speaker"] in conflicted:
            problems.append(Problem(
                kind="gender-conflict", path=r["path"], utt_id=r["utt_id"],
                source=r["_source"], line=r["_line"], code=r["speaker"],
                reason=f"speaker {r['speaker']!r} is labelled both M and F; fix the gender of "
                "that speaker's rows or override it with the gender_map option"))
        else:
            keep.append(r)
    return keep, problems


def problems_frame(problems: Sequence[Problem]) -> pd.DataFrame:
    """Return the problems as a DataFrame with :data:`PROBLEM_COLUMNS` (kinds in report order)."""
    order = {k: i for i, k in enumerate(PROBLEM_KINDS)}
    items = sorted(problems, key=lambda p: (order.get(p.kind, len(order)), p.path))
    df = pd.DataFrame(
        {
            "kind": pd.Series([p.kind for p in items], dtype="string"),
            "path": pd.Series([p.path for p in items], dtype="string"),
            "source": pd.Series([p.source for p in items], dtype="string"),
            "line": pd.Series([p.line for p in items], dtype="Int64"),
            "utt_id": pd.Series([p.utt_id for p in items], dtype="string"),
            "code": pd.Series([p.code for p in items], dtype="string"),
            "reason": pd.Series([p.reason for p in items], dtype="string"),
        },
        columns=list(PROBLEM_COLUMNS),
    )
    return df


def _where(row: pd.Series) -> str:
    name = Path(str(row["path"])).name
    if pd.notna(row["source"]) and pd.notna(row["line"]):
        return f"{Path(str(row['source'])).name} line {int(row['line'])} ({name})"
    return name


def _listing(where: list[str]) -> str:
    shown = ", ".join(where[:_LIST_PER_GROUP])
    extra = len(where) - _LIST_PER_GROUP
    return f"{shown} and {extra} more" if extra > 0 else shown


def describe_problems(problems: pd.DataFrame, *, spec: str) -> str:
    """Summarise a problems table as one line: every kind, every offending code, the rows.

    Each kind is listed with its fix; codes (unknown emotion codes, gender spellings, ...) are
    listed one by one with the files holding them (the first few, then a count).
    """
    parts: list[str] = []
    for kind, group in problems.groupby("kind", sort=False):
        first = str(group["reason"].iloc[0])
        if group["code"].notna().all() and kind != "duplicate":
            hint = first.split("; ", 1)[-1]
            listed = [f"{code!r} in {_listing([_where(r) for _, r in rows.iterrows()])}"
                      for code, rows in group.groupby("code", sort=False)]
            parts.append(f"{kind} {'; '.join(listed)} ({hint})")
        else:
            where = [_where(r) for _, r in group.iterrows()]
            parts.append(f"{kind} in {_listing(where)} ({first})")
    return (f"{spec}: {len(problems)} problem(s): " + "; ".join(parts)
            + f"; fix them, or run `fairser corpus inspect {spec} --skip-bad` to skip these rows")


def assign_splits(manifest: pd.DataFrame, *, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  overwrite: bool = True) -> pd.DataFrame:
    """Assign a deterministic, speaker-disjoint, gender-stratified train/dev/test split.

    Speakers of each gender (M, F, missing) are shuffled with ``seed`` and cut by
    ``fractions`` (shares of speakers). Every split that exists holds both genders: a split
    is only made when *each* gender present (M and F) has enough speakers for it and for a
    train speaker. With ``k`` = the smaller of the male and female speaker counts:

    - ``k >= 3``: train, dev and test (each at least one speaker of each gender);
    - ``k == 2`` (e.g. CASIA's 2 + 2 speakers): train and test, one speaker of each gender in
      each, and **no dev split** (select models on a source corpus, or pass a
      ``split_fractions`` with a zero dev share to say so explicitly);
    - ``k <= 1``: every speaker goes to train (a speaker-disjoint split cannot hold both
      genders).

    A zero share in ``fractions`` removes that split. Speakers with missing gender follow the
    same rule on their own count.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Needs ``speaker`` and ``gender`` columns.
    seed : int, default=0
        Shuffling seed; the same seed gives the same split.
    fractions : tuple of float, default=(0.7, 0.15, 0.15)
        Train, dev, test shares of each gender's speakers.
    overwrite : bool, default=True
        Replace existing split values; when False only rows with a missing split are filled
        (speakers that already have a split keep it).

    Returns
    -------
    pandas.DataFrame
        A copy with the ``split`` column filled.
    """
    df = manifest.copy()
    target = df["split"].isna() if (not overwrite and "split" in df.columns) else \
        pd.Series(True, index=df.index)
    speakers = df.loc[target, ["speaker", "gender"]].drop_duplicates("speaker")
    groups = {
        "M": sorted(speakers.loc[speakers["gender"] == "M", "speaker"].astype(str)),
        "F": sorted(speakers.loc[speakers["gender"] == "F", "speaker"].astype(str)),
        "NA": sorted(speakers.loc[speakers["gender"].isna(), "speaker"].astype(str)),
    }
    present = [len(groups[g]) for g in ("M", "F") if groups[g]]
    k = min(present) if present else len(groups["NA"])
    split_of: dict[str, str] = {}
    for gi, g in enumerate(("M", "F", "NA")):
        names = groups[g]
        if not names:
            continue
        kk = k if g != "NA" else len(names)
        n = len(names)
        n_test = max(1, round(n * fractions[2])) if (kk >= 2 and fractions[2] > 0) else 0
        n_dev = max(1, round(n * fractions[1])) if (kk >= 3 and fractions[1] > 0) else 0
        while n - n_test - n_dev < 1:
            if n_dev > 1 and n_dev >= n_test:
                n_dev -= 1
            elif n_test > 1:
                n_test -= 1
            else:
                break
        order = np.random.default_rng([int(seed) & 0xFFFFFFFF, gi]).permutation(n)
        for rank, idx in enumerate(order):
            name = names[int(idx)]
            split_of[name] = "test" if rank < n_test else "dev" if rank < n_test + n_dev \
                else "train"
    new = df["speaker"].astype(str).map(split_of)
    if "split" not in df.columns:
        df["split"] = pd.Series(pd.NA, index=df.index, dtype="string")
    df["split"] = df["split"].astype("string")
    df.loc[target, "split"] = new[target].astype("string")
    return df
