"""Emotion probabilities for audio files from the models of a finished run.

``RUN_DIR`` may be the folder ``fairser run`` (or ``fairser demo``) wrote, one saved model
folder of it (``models/RUN_ID``, holding ``run.json`` and ``model/``), the workdir ``fairser
train`` wrote (holding ``model/model.json``), or a saved model itself (``model.json``). For a
run folder, one model per emotion is chosen (binary task: each emotion's own ``emotion vs rest``
model, so the columns are one-vs-rest probabilities that need not sum to one; multiclass: one
model whose columns sum to one). Unspecified choices default to: the method variant
``recommended`` when present (``configs/shared/recommended.yaml``), else method ``pa-cfa`` (else
the first in registry order), the lowest seed, the untouched source condition (``all`` or
``balanced``) when present, then the first target and sweep point; the chosen models are
recorded in the returned frame's ``attrs["models"]``.

Every file is scored on its own (a bad file gets its reason in the ``error`` column); a run
folder or model that cannot be used is one :class:`~fairser.errors.ConfigError` line.

The files may come from a *manifest* (:func:`read_predict_manifest`: a CSV with a ``path``
column and optional ``speaker``, ``gender`` and ``corpus`` columns). Those columns feed the
model's levers (``input_norm: per-speaker`` reads ``speaker``, and ``corpus`` for rows without
one: their corpus's fitted statistics when the model saw that corpus, e.g. ``ased``, else the
global ones; ``thresholds: parity`` and ``erase: qleace`` read ``gender``). Plain files have
none (``corpus=`` names one for all of them): each lever then falls back as the training layer
documents and warns; every such warning is kept once, as one line, in ``attrs["notes"]``.
The ``decision`` column holds the model's own decisions (after per-gender thresholds): the
emotions decided positive (binary one-vs-rest models, comma-separated) or the decided class.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairser.audio import audio_info
from fairser.errors import AudioError, ConfigError
from fairser.experiments.backend import Backend, default_backend
from fairser.experiments.saved_models import choose_models, find_models, load_model

__all__ = ["find_models", "predict_files", "read_predict_manifest"]

def _file_problem(path: Path) -> tuple[str | None, float]:
    """``(reason the file cannot be scored or None, duration in s)``."""
    if path.is_dir():
        return (f"is a folder, not an audio file; pass the files in it (e.g. "
                f"{path / '*.wav'})"), 0.0
    if not path.exists():
        return "audio file not found; check the path", 0.0
    try:
        info = audio_info(path)
    except (AudioError, OSError) as exc:
        return " ".join(str(exc).split()).removeprefix(f"{path}: "), 0.0
    if info.frames == 0:
        return "empty audio (0 samples); pass a file with speech", 0.0
    return None, float(info.duration_s)


def read_predict_manifest(path: Path | str) -> pd.DataFrame:
    """The files of a predict manifest: columns ``path``, ``speaker``, ``gender``, ``corpus``.

    A CSV with a ``path`` column (relative paths are resolved against the CSV's folder) and
    optionally ``speaker``, ``gender`` (any spelling :func:`fairser.corpora.normalise_gender`
    knows) and ``corpus`` (the corpus label the model was trained with, e.g. ``ased``); empty
    = unknown. Other columns are ignored. A missing column is all unknown (its lever falls
    back, see the module docstring).

    Raises
    ------
    ConfigError
        Unreadable CSV, no ``path`` column, an empty path or an unknown gender spelling: one
        line naming the file, the row and the fix.
    """
    from fairser.corpora import normalise_gender

    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: cannot read the manifest ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]}); pass a CSV with a 'path' "
                          "column (and optionally 'speaker' and 'gender')") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if "path" not in raw.columns:
        raise ConfigError(f"{path}: no 'path' column (columns: {', '.join(raw.columns)}); "
                          "the manifest needs 'path' and may have 'speaker' and 'gender'")
    out = pd.DataFrame(index=raw.index)
    paths = []
    for i, value in enumerate(raw["path"]):
        text = str(value).strip()
        if not text:
            raise ConfigError(f"{path}: row {i + 2}: empty 'path'; give every row a file")
        file = Path(text).expanduser()
        paths.append(file if file.is_absolute() else path.parent / file)
    out["path"] = paths
    speakers = raw["speaker"].str.strip() if "speaker" in raw.columns else None
    out["speaker"] = (pd.Series(pd.NA, index=raw.index, dtype="string") if speakers is None
                      else speakers.where(speakers != "", pd.NA))
    genders: list[str | None] = []
    for i, value in enumerate(raw["gender"] if "gender" in raw.columns else [None] * len(raw)):
        try:
            genders.append(normalise_gender(None if value is None or not str(value).strip()
                                            else value))
        except KeyError:
            raise ConfigError(f"{path}: row {i + 2}: unknown gender {value!r}; write M or F "
                              "(or leave it empty when unknown)") from None
    out["gender"] = pd.Series(genders, index=raw.index, dtype="string")
    corpora = raw["corpus"].str.strip() if "corpus" in raw.columns else None
    out["corpus"] = (pd.Series(pd.NA, index=raw.index, dtype="string") if corpora is None
                     else corpora.where(corpora != "", pd.NA))
    out.attrs["columns"] = [c for c in ("speaker", "gender", "corpus") if c in raw.columns]
    return out.reset_index(drop=True)


def predict_files(run_dir: Path | str, files: list[Path | str] | None = None, *,
                  manifest: Path | str | pd.DataFrame | None = None,
                  method: str | None = None, seed: int | None = None,
                  target: str | None = None, condition: str | None = None,
                  corpus: str | None = None,
                  cache_dir: Path | None = None, progress: bool = False,
                  device: str | None = None, precision: str | None = None,
                  backend: Backend | None = None) -> pd.DataFrame:
    """Emotion probabilities of ``files`` from the models saved in ``run_dir``.

    Parameters
    ----------
    run_dir : path
        A run folder, one saved model folder, or the workdir of ``fairser train``.
    files : list of path, optional
        Audio files (anything :func:`fairser.audio.load_audio` reads).
    manifest : path or DataFrame, optional
        Instead of ``files``: a predict manifest (:func:`read_predict_manifest`) whose
        ``speaker`` and ``gender`` columns feed the model's levers.
    method, seed, target, condition : optional
        Which models to use (see the module docstring for the defaults).
    corpus : str, optional
        Corpus label of files without one in the manifest (e.g. ``ased``): rows without a
        speaker get that corpus's fitted statistics (``input_norm: per-speaker``) when the
        model saw it, else the global ones (default: none named).
    cache_dir : path, optional
        Feature store folder (default the global cache).
    progress : bool, default=False
        Show the extraction progress bar.
    device : str, optional
        ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``: extraction and model.
    precision : str, optional
        ``fp32`` (default), ``bf16`` or ``fp16``: the model's arithmetic (autocast on CUDA).
        Features are always extracted at the precision the model was trained on (recorded
        in its ``run.json``; fp32 when absent), so they match the training features.
    backend : Backend, optional
        The lower layers (default the real ones).

    Returns
    -------
    DataFrame
        One row per file, in order: ``file``, ``p_<emotion>`` per emotion, ``top`` (the
        emotion with the highest probability; with a single binary model, the emotion when
        its probability is at least 0.5, else ``rest``), ``decision`` (the model's own
        decisions, see the module docstring) and ``error`` (None, or why the file could not
        be scored; its probabilities are then NaN). ``attrs["models"]`` lists the models used,
        ``attrs["notes"]`` the levers' fallbacks (one line each).

    Raises
    ------
    ConfigError
        No files (or both files and a manifest), no usable model, or no model matching the
        choices.
    """
    if files and manifest is not None:
        raise ConfigError("predict: pass audio files or --manifest, not both")
    if manifest is not None:
        table = (manifest if isinstance(manifest, pd.DataFrame)
                 else read_predict_manifest(manifest))
        files = list(table["path"])
        speakers, sexes = list(table["speaker"]), list(table["gender"])
        named = list(table["corpus"]) if "corpus" in table.columns else [pd.NA] * len(files)
    else:
        speakers = sexes = named = [pd.NA] * len(files or [])
    if not files:
        raise ConfigError("predict: no audio files given; pass one or more paths after --run "
                          "(or a manifest with --manifest)")
    chosen = choose_models(find_models(run_dir), method=method, seed=seed, target=target,
                     condition=condition)
    backend = backend or default_backend()
    models = [(info, load_model(backend, info, device, precision)) for _, info in chosen]
    paths = [Path(f) for f in files]
    errors: list[str | None] = []
    rows = []
    for i, path in enumerate(paths):
        reason, duration = _file_problem(path)
        errors.append(reason)
        if reason is None:
            rows.append({"corpus": _text(named[i]) or corpus or "predict",
                         "utt_id": f"{i:05d}-{path.stem}",
                         "path": str(path.resolve()), "speaker": _text(speakers[i]),
                         "gender": _text(sexes[i]), "emotion": None, "split": None,
                         "language": "und", "duration_s": duration, "_row": i})
    columns = _probability_columns(models)
    proba = np.full((len(paths), len(columns)), np.nan)
    decided: list[str | None] = [None] * len(paths)
    notes: list[str] = []
    if rows:
        from fairser.corpora import coerce_manifest, utt_key

        manifest = coerce_manifest(pd.DataFrame(rows).drop(columns="_row"))
        index = [r["_row"] for r in rows]
        info0 = models[0][0]
        where: dict[str, Any] = {} if device is None else {"device": device}
        trained_at = {str(i.get("features_precision") or "fp32") for _, i in chosen}
        if len(trained_at) > 1:
            raise ConfigError(f"predict: the chosen models were trained on features of "
                              f"different precisions ({sorted(trained_at)}); choose models "
                              "of one run (--method, --seed)")
        if trained_at != {"fp32"}:
            where["precision"] = trained_at.pop()
        feats = backend.extract(manifest, info0["frontend"], layers=info0.get("layers"),
                                cache_dir=cache_dir, workers=1, progress=progress, **where)
        bad = getattr(feats, "bad", None)
        reasons = ({} if bad is None or not len(bad) else
                   dict(zip(bad["utt_id"].astype(str), bad["reason"].astype(str), strict=True)))
        keep = []
        for j, (name, utt, i) in enumerate(zip(manifest["corpus"].astype(str),
                                               manifest["utt_id"].astype(str), index,
                                               strict=True)):
            if utt in reasons or utt_key(name, utt) not in feats:
                errors[i] = f"no features ({reasons.get(utt, 'extraction failed')})"
            else:
                keep.append(j)
        good = manifest.iloc[keep].reset_index(drop=True)
        if len(good):
            scored, labels, notes = _probabilities(models, good, feats)
            proba[[index[j] for j in keep]] = scored
            for j, label in zip(keep, labels, strict=True):
                decided[index[j]] = label
    out = pd.DataFrame({"file": [str(p) for p in paths]})
    for j, col in enumerate(columns):
        out[f"p_{col}"] = proba[:, j]
    tops = [None if not np.isfinite(row).all()
            else columns[int(np.argmax(row))] if len(columns) > 1 or row[0] >= 0.5 else "rest"
            for row in proba]
    out["top"] = pd.Series(tops, dtype=object)
    out["decision"] = pd.Series(decided, dtype=object)
    out["error"] = pd.Series(errors, dtype=object)  # None for a scored file
    out.attrs["notes"] = notes
    out.attrs["models"] = [{"folder": str(folder), **{k: info.get(k) for k in (
        "method", "emotion", "seed", "target", "condition", "sweep")}} for folder, info in chosen]
    return out


def _probability_columns(models: list[tuple[dict[str, Any], Any]]) -> list[str]:
    cols: list[str] = []
    for info, _ in models:
        if info.get("emotion") == "all":
            cols.extend(str(e) for e in info.get("emotions") or [])
        else:
            cols.append(str(info["emotion"]))
    return cols


def _text(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float)
                                                        and np.isnan(value)) else str(value)


def _probabilities(models: list[tuple[dict[str, Any], Any]], manifest: pd.DataFrame,
                   feats: Any) -> tuple[np.ndarray, list[str], list[str]]:
    """``(probabilities, decision per row, lever notes)`` of every model on ``manifest``."""
    from fairser.experiments.scoring import decisions

    parts, chosen, notes = [], [], []
    for info, model in models:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = model.outputs(manifest, feats)
        for w in caught:
            if not issubclass(w.category, UserWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                continue
            line = " ".join(str(w.message).split())
            if line not in notes:
                notes.append(line)
        proba = np.asarray(out.proba, dtype=float)
        labels = decisions(out, proba, where=str(info["model_dir"]))
        if proba.ndim == 2:
            classes = [str(e) for e in info.get("emotions") or []]
            chosen.append([classes[k] if 0 <= k < len(classes) else str(k) for k in labels])
        else:
            chosen.append([str(info["emotion"]) if k == 1 else "" for k in labels])
        parts.append(proba if proba.ndim == 2 else proba.reshape(-1, 1))
    out_p = np.concatenate(parts, axis=1)
    expected = len(_probability_columns(models))
    if out_p.shape[1] != expected:
        raise ConfigError(f"{models[0][0]['model_dir']}: the model gives {out_p.shape[1]} "
                          f"probabilities for {expected} emotions listed in its run.json; "
                          "retrain it")
    per_row = [",".join(e for e in row if e) for row in zip(*chosen, strict=True)]
    return out_p, per_row, notes
