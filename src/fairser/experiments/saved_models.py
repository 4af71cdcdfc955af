"""The models saved in a run folder: finding them, choosing one per emotion, loading them.

``RUN_DIR`` may be the folder ``fairser run`` (or ``fairser demo``) wrote, one saved model
folder of it (``models/RUN_ID``, holding ``run.json`` and ``model/``), the workdir ``fairser
train`` wrote (holding ``model/model.json``), or a saved model itself (``model.json``). The
defaults of :func:`choose_models` are described in :mod:`fairser.experiments.predict`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fairser.errors import ConfigError, FairserError
from fairser.experiments.backend import Backend

__all__ = ["choose_models", "find_models", "load_model"]

_INFO = "run.json"
_MODEL_META = "model.json"

#: The methods chosen when the run holds them and none is asked for, in order of preference:
#: the recommended recipe, then the paper's proposal.
_DEFAULT_METHODS = ("recommended", "pa-cfa")

#: Condition names preferred by default: the untouched source.
_UNTOUCHED = ("all", "balanced")

_FIX = "point --run at the folder `fairser run`, `fairser demo` or `fairser train` wrote"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({type(exc).__name__}); delete that model "
                          "folder and rerun, or " + _FIX) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object; " + _FIX)
    return data


def _run_info(folder: Path) -> dict[str, Any]:
    """``run.json`` of a model saved by ``fairser run``, checked."""
    info = _read_json(folder / _INFO)
    missing = [k for k in ("method", "emotion", "frontend") if k not in info]
    if missing:
        raise ConfigError(f"{folder / _INFO}: no {missing[0]!r}; not a model saved by "
                          "`fairser run`; delete that model folder and rerun, or " + _FIX)
    return {**info, "model_dir": str(folder / "model")}


def _train_info(model_dir: Path) -> dict[str, Any]:
    """What predict needs, from the ``model.json`` of a model saved by ``fairser train``."""
    path = model_dir / _MODEL_META
    meta = _read_json(path)
    labels, features = meta.get("labels"), meta.get("features")
    for key, value in (("method", meta.get("method")), ("labels", labels),
                       ("features", features)):
        if not value:
            raise ConfigError(f"{path}: no {key!r}; not a complete fairser model (retrain it), "
                              "or " + _FIX)
    if not isinstance(labels, dict) or not isinstance(features, dict) or not (
            features.get("frontend") and labels.get("classes")):
        raise ConfigError(f"{path}: 'labels' or 'features' is incomplete; not a complete "
                          "fairser model (retrain it), or " + _FIX)
    binary = labels.get("task") == "binary"
    positive = labels.get("positive")
    return {"method": meta["method"], "seed": meta.get("seed"), "target": None,
            "condition": None, "sweep": {}, "task": labels.get("task"),
            "emotion": positive if binary else "all",
            "emotions": [positive] if binary else list(labels["classes"]),
            "frontend": features["frontend"], "layers": features.get("layers"),
            "model_dir": str(model_dir)}


def find_models(run_dir: Path | str) -> list[tuple[Path, dict[str, Any]]]:
    """Saved models under ``run_dir`` as ``(folder, info)``; ``info["model_dir"]`` is loaded.

    Raises
    ------
    ConfigError
        When ``run_dir`` is missing or holds no usable model (one line naming the file).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such folder; " + _FIX)
    if (run_dir / _INFO).is_file():
        return [(run_dir, _run_info(run_dir))]
    if (run_dir / _MODEL_META).is_file():  # a saved model (e.g. <workdir>/model)
        return [(run_dir, _train_info(run_dir))]
    if (run_dir / "model" / _MODEL_META).is_file():  # the workdir of `fairser train`
        return [(run_dir, _train_info(run_dir / "model"))]
    found = [(p.parent, _run_info(p.parent))
             for p in sorted((run_dir / "models").glob(f"*/{_INFO}"))]
    if not found:
        raise ConfigError(f"{run_dir}: no saved models (models/*/run.json or model.json); pass "
                          "the folder `fairser run`, `fairser demo` (with save_models: true) or "
                          "`fairser train` wrote")
    return found


def choose_models(models: list[tuple[Path, dict[str, Any]]], *, method: str | None,
                  seed: int | None, target: str | None,
                  condition: str | None) -> list[tuple[Path, dict[str, Any]]]:
    """One model per emotion of ``models`` (see :mod:`fairser.experiments.predict`)."""

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

    pool = pick("method", method, models, [*_DEFAULT_METHODS, *METHODS])
    pool = pick("seed", seed, pool, sorted({i.get("seed") for _, i in pool},
                                           key=lambda v: (v is None, v)))
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


def load_model(backend: Backend, info: dict[str, Any], device: str | None = None,
               precision: str | None = None) -> Any:
    """The model of ``info`` on ``device`` / ``precision``; a broken one is one line."""
    model_dir = Path(info["model_dir"])
    try:
        where = {} if device is None else {"device": device}
        if precision is not None:
            where["precision"] = precision
        return backend.load_model(model_dir, **where)
    except FairserError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ConfigError(f"{model_dir}: the saved model is incomplete or corrupt "
                          f"({type(exc).__name__}: {exc}); retrain it, or " + _FIX) from None
