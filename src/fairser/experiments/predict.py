"""Emotion probabilities for audio files from the models of a finished run.

``RUN_DIR`` is either one saved model folder (``models/RUN_ID``, holding ``run.json`` and
``model/``) or a whole run folder. For a run folder, one model per emotion is chosen (binary
task: each emotion's own ``emotion vs rest`` model, so the columns are one-vs-rest
probabilities that need not sum to one; multiclass: one model whose columns sum to one).
Unspecified choices default to: method ``pa-cfa`` when present (else the first in table order),
the lowest seed, the untouched source condition (``all`` or ``balanced``) when present, then
the first target and sweep point; the chosen models are recorded in the returned frame's
``attrs["models"]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairser.audio import audio_info
from fairser.errors import AudioError, ConfigError
from fairser.experiments.backend import Backend, default_backend

__all__ = ["find_models", "predict_files"]

_INFO = "run.json"

#: The method chosen when the run holds it and none is asked for (the paper's proposal).
_DEFAULT_METHOD = "pa-cfa"

#: Condition names preferred by default: the untouched source.
_UNTOUCHED = ("all", "balanced")


def find_models(run_dir: Path | str) -> list[tuple[Path, dict[str, Any]]]:
    """Saved models under ``run_dir`` as ``(model folder, run.json contents)``.

    Raises
    ------
    ConfigError
        When ``run_dir`` holds no saved model.
    """
    run_dir = Path(run_dir)
    if (run_dir / _INFO).is_file():
        folders = [run_dir]
    else:
        folders = sorted(p.parent for p in (run_dir / "models").glob(f"*/{_INFO}"))
    found = []
    for folder in folders:
        try:
            info = json.loads((folder / _INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{folder / _INFO}: unreadable ({type(exc).__name__}); delete "
                              "that model folder and rerun `fairser run`") from None
        found.append((folder, info))
    if not found:
        raise ConfigError(f"{run_dir}: no saved models (models/*/run.json); pass the folder "
                          "`fairser run` or `fairser demo` wrote, with save_models: true")
    return found


def _choose(models: list[tuple[Path, dict[str, Any]]], *, method: str | None, seed: int | None,
            target: str | None, condition: str | None) -> list[tuple[Path, dict[str, Any]]]:
    def pick(key: str, wanted: Any, pool: list[tuple[Path, dict[str, Any]]], prefer: list[Any]
             ) -> list[tuple[Path, dict[str, Any]]]:
        values = sorted({json.dumps(info.get(key), sort_keys=True) for _, info in pool})
        choices = [json.loads(v) for v in values]
        if wanted is not None:
            kept = [(p, i) for p, i in pool if i.get(key) == wanted]
            if not kept:
                raise ConfigError(f"no saved model with {key} {wanted!r}; choose one of "
                                  f"{choices}")
            return kept
        for value in prefer + choices:
            if value in choices:
                return [(p, i) for p, i in pool if i.get(key) == value]
        return pool

    from fairser.methods import METHODS

    pool = pick("method", method, models, [_DEFAULT_METHOD, *METHODS])
    pool = pick("seed", seed, pool, sorted({i.get("seed") for _, i in pool}))
    pool = pick("condition", condition, pool, list(_UNTOUCHED))
    pool = pick("target", target, pool, [])
    pool = pick("sweep", None, pool, [{}])
    by_emotion: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path, info in pool:
        by_emotion.setdefault(str(info.get("emotion")), (path, info))
    emotions = pool[0][1].get("emotions") or sorted(by_emotion)
    order = [e for e in emotions if e in by_emotion] + sorted(set(by_emotion) - set(emotions))
    if "all" in by_emotion:
        order = ["all"]
    return [by_emotion[e] for e in order]


def _manifest(files: list[Path]) -> pd.DataFrame:
    rows = []
    for i, path in enumerate(files):
        if path.is_dir():
            raise AudioError(f"{path}: is a folder, not an audio file; pass the files in it "
                             f"(e.g. {path / '*.wav'})")
        if not path.exists():
            raise AudioError(f"{path}: audio file not found; check the path")
        info = audio_info(path)  # AudioError names the file
        if info.frames == 0:
            raise AudioError(f"{path}: empty audio (0 samples); pass a file with speech")
        rows.append({"corpus": "predict", "utt_id": f"{i:05d}-{path.stem}",
                     "path": str(path.resolve()), "speaker": f"file{i:05d}", "gender": None,
                     "emotion": None, "split": None, "language": "und",
                     "duration_s": info.duration_s})
    from fairser.corpora import coerce_manifest

    return coerce_manifest(pd.DataFrame(rows))


def predict_files(run_dir: Path | str, files: list[Path | str], *, method: str | None = None,
                  seed: int | None = None, target: str | None = None,
                  condition: str | None = None, cache_dir: Path | None = None,
                  progress: bool = False, backend: Backend | None = None) -> pd.DataFrame:
    """Emotion probabilities of ``files`` from the models saved in ``run_dir``.

    Parameters
    ----------
    run_dir : path
        A run folder or one saved model folder.
    files : list of path
        Audio files (anything :func:`fairser.audio.load_audio` reads).
    method, seed, target, condition : optional
        Which models to use (see the module docstring for the defaults).
    cache_dir : path, optional
        Feature store folder (default the global cache).
    progress : bool, default=False
        Show the extraction progress bar.
    backend : Backend, optional
        The lower layers (default the real ones).

    Returns
    -------
    DataFrame
        One row per file: ``file``, then ``p_<emotion>`` per emotion, then ``top`` (the
        emotion with the highest probability). ``attrs["models"]`` lists the models used.

    Raises
    ------
    ConfigError
        No model matches the choices.
    AudioError
        A file is missing or unreadable (the message names it).
    """
    if not files:
        raise ConfigError("predict: no audio files given; pass one or more paths after --run")
    chosen = _choose(find_models(run_dir), method=method, seed=seed, target=target,
                     condition=condition)
    backend = backend or default_backend()
    info0 = chosen[0][1]
    paths = [Path(f) for f in files]
    manifest = _manifest(paths)
    feats = backend.extract(manifest, info0["frontend"], layers=info0.get("layers"),
                            cache_dir=cache_dir, workers=1, progress=progress)
    bad = getattr(feats, "bad", None)
    if bad is not None and len(bad):
        first = bad.iloc[0]
        raise AudioError(f"{first['path']}: no features ({first['reason']}); re-encode the file")
    out = pd.DataFrame({"file": [str(p) for p in paths]})
    for folder, info in chosen:
        model = backend.load_model(folder / "model")
        proba = np.asarray(model.outputs(manifest, feats).proba, dtype=float)
        if info.get("emotion") == "all" or proba.ndim == 2:
            for j, emo in enumerate(info.get("emotions") or range(proba.shape[1])):
                out[f"p_{emo}"] = proba[:, j]
        else:
            out[f"p_{info['emotion']}"] = proba.reshape(-1)
    prob_cols = [c for c in out.columns if c.startswith("p_")]
    out["top"] = [prob_cols[j][2:] for j in out[prob_cols].to_numpy().argmax(axis=1)]
    out.attrs["models"] = [{"folder": str(folder), **{k: info.get(k) for k in (
        "method", "emotion", "seed", "target", "condition", "sweep")}} for folder, info in chosen]
    return out
