"""From an adapter's raw records to a validated manifest, the same way for every corpus.

:func:`build_manifest` applies the label map, normalises genders and split names (every
missing-value spelling is missing), reads each audio header (a missing, unreadable, empty or
truncated file is a problem), catches duplicate ids and speakers with two genders (reported,
or resolved to the speaker's majority on request), optionally checks the samples themselves
(:mod:`fairser.corpora._audiocheck`), assigns splits to corpora without official ones and
returns the typed, validated manifest with every problem found.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from fairser.audio import audio_info
from fairser.corpora._adapter import Adapter, RawUtterance
from fairser.corpora._options import CorpusOptions
from fairser.corpora._problems import CorpusScan, Problem, problems_frame, resolved_frame
from fairser.corpora._schema import (
    COLUMNS,
    coerce_manifest,
    is_missing,
    normalise_gender,
    normalise_split,
    validate_manifest,
)
from fairser.corpora._splits import assign_splits
from fairser.errors import AudioError, CorpusError

__all__ = ["build_manifest"]


def build_manifest(adapter: Adapter, root: Path, opts: CorpusOptions,
                   records: Sequence[RawUtterance], problems: Sequence[Problem], *,
                   spec: str, language: str | None = None, progress: bool = False,
                   audio_check: bool = False) -> CorpusScan:
    """Turn an adapter's raw records into a validated manifest plus a problems table.

    Parameters
    ----------
    adapter : Adapter
        The corpus kind (name, default label map, official splits or not).
    root : Path
        Corpus root (for messages).
    opts : CorpusOptions
        Parsed options (label, gender and split maps; gender resolution; split seed and
        fractions).
    records : sequence of RawUtterance
        What the adapter found.
    problems : sequence of Problem
        What the adapter could not parse or skipped.
    spec : str
        ``KIND:ROOT`` used in messages.
    language : str, optional
        Language code of every row (default: the adapter's); a record's ``extras`` may carry
        its own ``language``.
    progress : bool, default=False
        Show a rich progress bar (on stderr) while reading audio headers.
    audio_check : bool, default=False
        Also decode every file and report silent, clipped, out-of-range and truncated audio
        (see :func:`fairser.audio.check_audio`; verdicts are cached per file).

    Returns
    -------
    CorpusScan
        Manifest of the good rows, the problems (empty when all is well) and what was
        resolved.

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
    cwd = os.getcwd()
    paths = [p if os.path.isabs(p) else os.path.join(cwd, p)
             for p in (os.fspath(rec.path) for rec in records)]
    headers = _read_headers(paths, progress=progress)
    for rec, path, header in zip(records, paths, headers, strict=True):

        def add(kind: str, reason: str, code: str | None = None, rec: RawUtterance = rec,
                path: str = path) -> None:
            problems.append(Problem(kind=kind, path=path, reason=reason, source=rec.source,
                                    line=rec.line, utt_id=rec.utt_id, code=code))

        bad = False
        emotion: str | None = None
        if not is_missing(rec.emotion):
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
        if is_missing(rec.speaker):
            add("bad-row", f"speaker is missing ({str(rec.speaker)!r}); fill in the speaker or "
                "drop the row")
            bad = True
        if rec.utt_id in seen:
            add("duplicate", f"utt_id {rec.utt_id!r} already used by {seen[rec.utt_id]}; "
                "remove or rename one of the files", rec.utt_id)
            continue
        seen[rec.utt_id] = path
        if isinstance(header, AudioError):
            add(getattr(header, "kind", "unreadable-audio"),
                getattr(header, "reason", str(header)))
            continue
        duration = header
        if duration <= 0:
            add("empty-audio", "audio file holds no samples; remove it from the corpus")
            continue
        if bad:
            continue
        row = {
            "corpus": corpus, "utt_id": rec.utt_id, "path": path, "speaker": str(rec.speaker),
            "gender": gender, "emotion": emotion, "split": split, "language": lang,
            "duration_s": float(duration), "_source": rec.source, "_line": rec.line,
        }
        for key, value in rec.extras.items():
            if key == "language":
                if not is_missing(value):
                    row[key] = str(value).strip()
            elif key not in COLUMNS:
                row[key] = None if is_missing(value) else value
        rows.append(row)

    rows, conflicts, resolved = _gender_conflicts(rows, opts.resolve_gender)
    problems.extend(conflicts)
    if audio_check and rows:
        from fairser.corpora._audiocheck import check_files

        verdicts = check_files([r["path"] for r in rows], progress=progress)
        keep = []
        for r in rows:
            for kind, reason in verdicts.get(r["path"], ()):
                problems.append(Problem(kind=kind, path=r["path"], reason=reason,
                                        source=r["_source"], line=r["_line"],
                                        utt_id=r["utt_id"]))
            if not verdicts.get(r["path"]):
                keep.append(r)
        rows = keep
    for r in rows:
        del r["_source"], r["_line"]
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(COLUMNS))
    df = coerce_manifest(df)
    if len(df) and (not adapter.official_splits or df["split"].isna().all()):
        df = assign_splits(df, seed=opts.seed, fractions=opts.split_fractions)
    validate_manifest(df)
    return CorpusScan(manifest=df, problems=problems_frame(problems), spec=spec,
                      resolved=resolved_frame(resolved), audio_check=audio_check)


def _durations(paths: list[str]) -> list[float | AudioError]:
    out: list[float | AudioError] = []
    for path in paths:
        try:
            out.append(audio_info(path).duration_s)
        except AudioError as exc:
            out.append(exc)
    return out


def _read_headers(paths: list[str], *, progress: bool) -> list[float | AudioError]:
    """Durations (or the AudioError) of every file, read in threads for large corpora.

    Opening a file and reading its first bytes is mostly waiting on the operating system, which
    threads overlap; chunks of files keep the pool's own overhead small.
    """
    chunk = 512
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    if len(chunks) <= 2:
        return _durations(paths)
    out: list[float | AudioError] = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1) + 2) as pool:
        for part in _track(pool.map(_durations, chunks), len(chunks), progress,
                           f"reading {len(paths)} audio headers"):
            out.extend(part)
    return out


def _track(items, total: int, enabled: bool, label: str):
    if not enabled:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
    if not console.is_terminal:  # no bar (and no stray blank line) in logs and pipes
        yield from items
        return
    yield from track(items, total=total, description=label, transient=True, console=console)


def _gender_conflicts(rows: list[dict[str, Any]], mode: str
                      ) -> tuple[list[dict[str, Any]], list[Problem], list[dict[str, Any]]]:
    """Find speakers labelled both M and F; report (or, with ``majority``, fix) the odd rows.

    The rows that disagree with the speaker's majority are the problems (all the speaker's
    rows when there is no majority); the others are kept. With ``mode == "majority"`` the odd
    rows take the majority's gender and are listed as resolved instead.
    """
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        if r["gender"] is not None:
            counts[r["speaker"]][r["gender"]] += 1
    conflicted = {s: c for s, c in counts.items() if len(c) > 1}
    if not conflicted:
        return rows, [], []
    keep: list[dict[str, Any]] = []
    problems: list[Problem] = []
    resolved: list[dict[str, Any]] = []
    for r in rows:
        c = conflicted.get(r["speaker"])
        if c is None or r["gender"] is None:
            keep.append(r)
            continue
        (top, n_top), (_, n_other) = c.most_common(2)
        tally = f"{c['F']} row(s) F and {c['M']} row(s) M"
        if n_top == n_other:
            problems.append(Problem(
                kind="gender-conflict", path=r["path"], utt_id=r["utt_id"], source=r["_source"],
                line=r["_line"], code=r["speaker"],
                reason=f"speaker {r['speaker']!r} has {tally}, no majority; fix the gender "
                "of that speaker's rows or override it with the gender_map option"))
        elif r["gender"] == top:
            keep.append(r)
        elif mode == "majority":
            resolved.append({
                "utt_id": r["utt_id"], "path": r["path"], "source": r["_source"],
                "line": r["_line"], "column": "gender", "value": r["gender"],
                "resolved": top, "reason": f"speaker {r['speaker']!r} has {tally}; "
                f"majority {top} (resolve_gender=majority)"})
            keep.append({**r, "gender": top})
        else:
            problems.append(Problem(
                kind="gender-conflict", path=r["path"], utt_id=r["utt_id"], source=r["_source"],
                line=r["_line"], code=r["speaker"],
                reason=f"speaker {r['speaker']!r} has {tally}, this one {r['gender']}; fix "
                "its gender, or pass -o resolve_gender=majority to give such rows the "
                "speaker's majority gender"))
    return keep, problems, resolved
