"""Summaries of a scanned corpus and atomic writers for manifests and problem tables.

:func:`summarize` returns a plain dict with stable keys (the ``--json`` output of
``fairser corpus inspect``):

``spec``
    the ``KIND:ROOT`` scanned.
``corpus``
    the manifest's corpus name (``null`` when no row survived).
``utterances``
    number of good rows.
``speakers``
    ``{"total", "M", "F", "unknown"}`` speaker counts by gender.
``utterances_by_gender``
    ``{"M", "F", "unknown"}`` row counts.
``emotions``
    ``{emotion: {"M", "F", "unknown", "total"}}`` for every emotion present, in the canonical
    order, unlabelled rows under ``"unlabelled"``.
``splits``
    ``{split: {"utterances", "speakers", "speakers_M", "speakers_F"}}`` (``"unassigned"`` for
    rows without a split).
``languages``
    ``{language: rows}``.
``hours``
    total audio duration in hours (3 decimals).
``duration_s``
    ``{"total", "mean", "min", "max"}`` in seconds (``null`` values when empty).
``problems``
    ``{"total", "by_kind": {kind: n}, "rows": [{kind, path, source, line, utt_id, code,
    reason}, ...]}`` listing every problem.
``resolved``
    ``{"total", "rows": [{utt_id, path, source, line, column, value, resolved, reason},
    ...]}``: values changed on request (e.g. ``resolve_gender=majority``); the rows are kept.
``audio_check``
    ``"samples"`` when the samples were checked (``--audio-check``), else ``"headers"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fairser._io import atomic_path
from fairser.corpora._problems import CorpusScan
from fairser.corpora._schema import EMOTIONS, SPLITS, validate_manifest
from fairser.errors import CorpusError

__all__ = ["MANIFEST_FORMATS", "manifest_format", "save_manifest", "save_problems", "summarize"]


def _gender_counts(values: pd.Series) -> dict[str, int]:
    return {"M": int((values == "M").sum()), "F": int((values == "F").sum()),
            "unknown": int(values.isna().sum())}


def summarize(scan: CorpusScan) -> dict[str, Any]:
    """Return the summary of a scan as a JSON-ready dict (keys documented in the module)."""
    df = scan.manifest
    spk = df.drop_duplicates("speaker")
    emotions: dict[str, dict[str, int]] = {}
    for emo in [*EMOTIONS, None]:
        rows = df[df["emotion"].isna()] if emo is None else df[df["emotion"] == emo]
        if len(rows):
            emotions[emo or "unlabelled"] = {**_gender_counts(rows["gender"]), "total": len(rows)}
    splits: dict[str, dict[str, int]] = {}
    for split in [*SPLITS, None]:
        rows = df[df["split"].isna()] if split is None else df[df["split"] == split]
        if len(rows):
            s_spk = rows.drop_duplicates("speaker")
            splits[split or "unassigned"] = {
                "utterances": len(rows), "speakers": len(s_spk),
                "speakers_M": int((s_spk["gender"] == "M").sum()),
                "speakers_F": int((s_spk["gender"] == "F").sum()),
            }
    dur = df["duration_s"]
    probs = scan.problems
    rows = _records(probs)
    return {
        "spec": scan.spec,
        "corpus": str(df["corpus"].iloc[0]) if len(df) else None,
        "utterances": len(df),
        "speakers": {"total": len(spk), **_gender_counts(spk["gender"])},
        "utterances_by_gender": _gender_counts(df["gender"]),
        "emotions": emotions,
        "splits": splits,
        "languages": {str(k): int(v) for k, v in df["language"].value_counts().items()},
        "hours": round(float(dur.sum()) / 3600.0, 3),
        "duration_s": {
            "total": round(float(dur.sum()), 3),
            "mean": round(float(dur.mean()), 3) if len(df) else None,
            "min": round(float(dur.min()), 3) if len(df) else None,
            "max": round(float(dur.max()), 3) if len(df) else None,
        },
        "problems": {
            "total": len(probs),
            "by_kind": {str(k): int(v) for k, v in probs["kind"].value_counts(sort=False)
                        .items()},
            "rows": rows,
        },
        "resolved": {"total": len(scan.resolved), "rows": _records(scan.resolved)},
        "audio_check": "samples" if scan.audio_check else "headers",
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else (int(v) if k == "line" else str(v)))
             for k, v in r.items()} for r in table.to_dict("records")]


def _atomic(path: Path, write) -> Path:
    path = Path(path).expanduser()
    if path.parent and not path.parent.exists():
        raise CorpusError(f"{path}: folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, not a file; pass a file path inside it")
    with atomic_path(path) as tmp:
        write(tmp)
    return path


#: Manifest file formats by file ending.
MANIFEST_FORMATS: dict[str, str] = {".parquet": "parquet", ".csv": "csv"}


def manifest_format(path: str | Path) -> str:
    """Return ``"parquet"`` or ``"csv"`` for ``path``'s ending; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix not in MANIFEST_FORMATS:
        raise CorpusError(
            f"{path}: cannot tell the manifest format from the ending {suffix or '(none)'!r}; "
            "name the file .parquet (typed, compact) or .csv (plain text)"
        )
    return MANIFEST_FORMATS[suffix]


def save_manifest(manifest: pd.DataFrame, path: str | Path) -> Path:
    """Validate ``manifest`` and write it to ``path``, atomically, in the format its ending
    names: ``.parquet`` or ``.csv`` (both read back with the ``csv:PATH`` corpus kind).

    Parameters
    ----------
    manifest : pandas.DataFrame
        A manifest (checked with :func:`fairser.corpora.validate_manifest`).
    path : str or Path
        Output file (its folder must exist), ending in ``.parquet`` or ``.csv``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    CorpusError
        For any other ending, a missing folder, or a folder at ``path``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, not a file; pass a file path inside it")
    fmt = manifest_format(path)
    validate_manifest(manifest)
    if fmt == "csv":
        return _atomic(Path(path), lambda tmp: manifest.to_csv(tmp, index=False))
    return _atomic(Path(path), lambda tmp: manifest.to_parquet(tmp, index=False))


def save_problems(problems: pd.DataFrame, path: str | Path) -> Path:
    """Write a problems table (the skipped rows with reasons) to ``path`` as CSV, atomically."""
    return _atomic(Path(path), lambda tmp: problems.to_csv(tmp, index=False))
