"""One training run described by a YAML file (what ``fairser train CONFIG.yaml`` executes).

Example::

    source: ravdess:../shared/data/ravdess     # KIND:ROOT, ROOT relative to this file
    target: casia:../shared/data/casia
    frontend: whisper-base
    layers: [2]
    method: pa-cfa
    emotion: angry
    seed: 0
    features_device: auto                      # extraction: or cpu, cuda, cuda:N, mps
    features_precision: fp32                   # extraction: or bf16, fp16
    training:                                  # fairser.training.TrainConfig options
      alpha: 0.5
      beta: 0.5
      device: auto                             # or cpu, cuda, cuda:N, mps
      precision: fp32                          # or bf16, fp16

``torchrun --nproc_per_node=N --no-python fairser train RUN.yaml`` trains the same run with
DistributedDataParallel on N processes (see :func:`run_from_file`); every process extracts
its own shard of the features first (:func:`extract_run_features`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationError

from fairser._config_io import read_yaml, validation_message
from fairser.decision import decide
from fairser.device import DeviceName, resolve_device
from fairser.errors import ConfigError, FeatureError
from fairser.metrics import unweighted_average_recall
from fairser.models.spec_checks import (
    PositionalLeakWarning,
    positional_leak,
    positional_leak_message,
)
from fairser.training.api import FittedModel, fit
from fairser.training.config import TrainConfig, _Strict
from fairser.training.distributed import Dist, process_group

__all__ = ["RunConfig", "evaluate_run", "extract_run_features", "run_from_file"]


class RunConfig(_Strict):
    """A single training run: data, features, method and training options."""

    source: str = Field(description="Source corpus as KIND:ROOT (ROOT relative to the file).")
    target: str | None = Field(
        None, description="Target corpus as KIND:ROOT; required by every method but source-only."
    )
    source_options: dict[str, Any] | None = Field(
        None, description="Adapter options of the source corpus (fairser.corpora.load_corpus)."
    )
    target_options: dict[str, Any] | None = Field(
        None, description="Adapter options of the target corpus."
    )
    frontend: str = Field("whisper-base", description="Feature frontend (fairser.features).")
    layers: int | list[int] | str | None = Field(
        None, description="Encoder layers to keep (None: the frontend's default)."
    )
    method: str = Field("pa", description="Training method (fairser.methods.METHODS).")
    emotion: str | list[str] | None = Field(
        "angry", description="Binary: the positive emotion; multiclass: None or the classes."
    )
    seed: int = Field(0, description="Seed of the run.")
    workdir: str | None = Field(
        None,
        description="Checkpoints and the trained model (default: '<config name>.run' beside "
        "the file); a rerun resumes there.",
    )
    cache_dir: str | None = Field(None, description="Feature cache (default: FAIRSER_CACHE).")
    features_device: DeviceName = Field(
        "auto",
        description="Where neural frontends extract: auto (CUDA, then MPS, else CPU; "
        "cuda:LOCAL_RANK under torchrun), cpu, cuda, cuda:N or mps.",
    )
    features_precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Extraction precision of neural frontends (part of the store key: fp32 "
        "and bf16 features never mix).",
    )
    features_batch_seconds: float | None = Field(
        None,
        gt=0,
        description="Padded audio seconds per neural extraction batch (bounds its memory; "
        "default 60 on the CPU, 600 on an accelerator).",
    )
    dist_timeout_s: float | None = Field(
        None,
        gt=0,
        description="Under torchrun: seconds a rank waits for the others at a barrier or "
        "collective (default: $FAIRSER_DIST_TIMEOUT_S, else 4 hours).",
    )
    training: TrainConfig = Field(
        default_factory=TrainConfig, description="fairser.training.TrainConfig options."
    )


def _resolve_spec(spec: str, base: Path) -> str:
    kind, sep, root = spec.partition(":")
    if not sep:
        raise ConfigError(f"corpus spec {spec!r}: expected KIND:ROOT, e.g. ravdess:data/ravdess")
    p = Path(root).expanduser()
    return f"{kind}:{p if p.is_absolute() else (base / p).resolve()}"


def _check_names(cfg: RunConfig, p: Path) -> None:
    """Method, emotion names and the target, checked before any corpus or feature work."""
    from fairser.corpora import EMOTIONS
    from fairser.methods import METHODS

    meth = METHODS.get(cfg.method)
    if meth is None:
        raise ConfigError(
            f"{p}: key 'method': unknown method {cfg.method!r}; use one of {', '.join(METHODS)}"
        )
    names = [cfg.emotion] if isinstance(cfg.emotion, str) else list(cfg.emotion or [])
    unknown = [e for e in names if e not in EMOTIONS]
    if unknown:
        raise ConfigError(
            f"{p}: key 'emotion': unknown emotion(s) {unknown}; use the "
            f"canonical names {', '.join(EMOTIONS)}"
        )
    if meth.uses_target and cfg.target is None:
        raise ConfigError(
            f"{p}: method {cfg.method!r} needs a target corpus; add "
            "'target: KIND:ROOT' or use method: source-only"
        )


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run YAML (unknown keys are errors).

    Raises
    ------
    ConfigError
        One line naming the file, the key and the fix.
    """
    p = Path(path)
    doc = read_yaml(p, what="run config")
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        if "target" not in data and ("targets" in data or "methods" in data):
            raise ConfigError(
                f"{p}: this is an experiment grid config (it has 'targets' or "
                f"'methods'); run it with `fairser run {p}`"
            ) from None
        msg = validation_message(exc, source=str(p), node=doc.node, model=RunConfig)
        raise ConfigError(msg) from None
    base = p.resolve().parent
    upd: dict[str, Any] = {"source": _resolve_spec(cfg.source, base)}
    if cfg.target is not None:
        upd["target"] = _resolve_spec(cfg.target, base)
    wd = Path(cfg.workdir) if cfg.workdir else Path(f"{p.stem}.run")
    upd["workdir"] = str(wd if wd.is_absolute() else (base / wd).resolve())
    if cfg.cache_dir is not None and not Path(cfg.cache_dir).is_absolute():
        upd["cache_dir"] = str((base / cfg.cache_dir).resolve())
    _check_names(cfg, p)
    return cfg.model_copy(update=upd)


def evaluate_run(
    model: FittedModel, manifest: pd.DataFrame, features: Any, *, split: str | None
) -> dict[str, float | int | None]:
    """UAR and own-head attribute accuracy on the labelled rows of ``split`` (None: all)."""
    rows = manifest
    if split is not None and "split" in manifest.columns:
        sel = manifest["split"].astype("string").fillna("") == split
        if sel.any():
            rows = manifest.loc[sel.to_numpy()].reset_index(drop=True)
    y = model.encode_labels(rows)
    keep = y >= 0
    rows = rows.loc[keep].reset_index(drop=True)
    y = y[keep]
    if len(rows) == 0:
        return {"rows": 0, "uar": None, "gender_head_acc": None}
    out = model.outputs(rows, features)
    pred = out.labels if out.labels is not None else decide(out.proba)  # with the thresholds
    res: dict[str, float | int | None] = {
        "rows": len(rows),
        "uar": unweighted_average_recall(y, pred),
        "gender_head_acc": None,
    }
    if out.attribute is not None and model.attribute in rows.columns:
        true = rows[model.attribute].astype("string").to_numpy(dtype=object)
        known = np.array([isinstance(t, str) for t in true])
        if known.any():
            res["gender_head_acc"] = float((out.attribute[known] == true[known]).mean())
    return res


def extract_run_features(cfg: RunConfig, manifest: pd.DataFrame, dist: Dist, *,
                         progress: bool) -> tuple[Any, dict[str, Any]]:
    """Features of every row of ``manifest``, extracted by every rank of ``dist`` together.

    One process extracts everything. Under torchrun, rank ``r`` of ``N`` extracts shard
    ``r/N`` of the manifest (:mod:`fairser.features.shard`, as ``fairser features extract``
    does) into the shared, content-hashed store, all ranks meet at a barrier, and each then
    opens the store for the whole manifest without computing anything and checks it is
    complete.

    Parameters
    ----------
    cfg : RunConfig
        Frontend, layers, cache and the ``features_*`` options.
    manifest : pandas.DataFrame
        Source and target rows.
    dist : Dist
        This process's place in the process group.
    progress : bool
        Show this process's progress bar and summary.

    Returns
    -------
    features : FeatureSet
        Every row's features (failed files in ``features.bad``, as in one process).
    info : dict
        ``shards`` (the number of ranks that extracted) and ``rows_per_shard`` (the rows each
        rank extracted or found stored, in rank order).

    Raises
    ------
    FeatureError
        Rows are missing or entries damaged after every rank's shard.
    """
    from fairser.features import extract

    kw: dict[str, Any] = {"layers": cfg.layers, "cache_dir": cfg.cache_dir,
                          "device": cfg.features_device, "precision": cfg.features_precision,
                          "batch_seconds": cfg.features_batch_seconds}
    if not dist.active:
        fs = extract(manifest, cfg.frontend, progress=progress, **kw)
        return fs, {"shards": 1, "rows_per_shard": [fs.stats.n_rows]}
    mine = extract(manifest, cfg.frontend, shard=(dist.rank, dist.world), progress=progress,
                   **kw)
    counts = torch.zeros(dist.world, dtype=torch.int64)
    counts[dist.rank] = mine.stats.n_rows
    dist.sum_(counts)  # also a barrier: every shard is in the store after it
    fs = extract(manifest, cfg.frontend, check_only=True, progress=False, **kw)
    if fs.missing or len(fs.damaged):
        example = fs.missing[0] if fs.missing else fs.damaged.iloc[0]["utt_id"]
        raise FeatureError(
            f"{fs.folder}: {len(fs.missing)} row(s) missing (e.g. {example}) and "
            f"{len(fs.damaged)} damaged entr{'y' if len(fs.damaged) == 1 else 'ies'} after "
            f"all {dist.world} ranks extracted their shards; rerun the same command to "
            "compute them")
    return fs, {"shards": dist.world, "rows_per_shard": counts.tolist()}


def run_from_file(
    path: str | Path,
    *,
    progress: bool = True,
    device: str | None = None,
    precision: str | None = None,
    num_workers: int | None = None,
) -> tuple[FittedModel, dict[str, Any]]:
    """Load corpora and features, train, save and evaluate the run described by ``path``.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), every process joins one process group
    (timeout ``dist_timeout_s``) and trains with DistributedDataParallel: rank 0 loads the
    corpora first (the others then read its caches), every rank extracts its shard of the
    features and checks the store is complete (:func:`extract_run_features`), rank 0 alone
    writes checkpoints, the model and evaluates it; the other ranks wait for it at a barrier.

    Parameters
    ----------
    path : str or pathlib.Path
        The run YAML.
    progress : bool
        Show progress bars (rank 0 only).
    device, precision, num_workers : optional
        Override the YAML's ``training.device``, ``training.precision`` and
        ``training.num_workers``.

    Returns
    -------
    model : FittedModel
        The trained model (also saved under ``<workdir>/model``).
    summary : dict
        ``workdir``, ``source_test`` and ``target`` scores (UAR, own gender head accuracy),
        ``device``, ``precision``, ``world_size``, this process's ``rank`` (scores on rank
        0 only) and ``features`` (how the extraction was shared, see
        :func:`extract_run_features`).
    """
    from fairser.corpora import load_corpus

    cfg = load_run_config(path)
    if positional_leak(cfg.training.model):
        warnings.warn(positional_leak_message(f"{path}: training"), PositionalLeakWarning,
                      stacklevel=2)
    dev = resolve_device(device or cfg.training.device)
    with process_group(dev, timeout_s=cfg.dist_timeout_s) as dist:
        main = dist.is_main
        with dist.main_first():
            source = load_corpus(cfg.source, options=cfg.source_options)
            target = load_corpus(cfg.target, options=cfg.target_options) if cfg.target else None
        both = source if target is None else pd.concat([source, target], ignore_index=True)
        features, shared = extract_run_features(cfg, both, dist, progress=progress and main)
        model = fit(
            source=source,
            target=target,
            features=features,
            method=cfg.method,
            emotion=cfg.emotion,
            config=cfg.training,
            seed=cfg.seed,
            workdir=cfg.workdir,
            progress=progress and main,
            device=device,
            precision=precision,
            num_workers=num_workers,
        )
        summary: dict[str, Any] = {
            "workdir": cfg.workdir,
            "model": str(Path(cfg.workdir) / "model"),
            "rank": dist.rank,
            "world_size": dist.world,
            "device": model.meta.get("device"),
            "precision": model.meta.get("precision"),
            "features": shared,
        }
        if main:
            summary["source_test"] = evaluate_run(model, source, features, split="test")
            if target is not None:
                summary["target"] = evaluate_run(model, target, features, split=None)
            if "pseudo_gender_accuracy" in model.history:
                summary["pseudo_gender_accuracy"] = model.history["pseudo_gender_accuracy"]
        dist.barrier()
    return model, summary
