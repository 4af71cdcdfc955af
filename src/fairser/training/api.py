"""``fit()``: train one model, on one device or distributed, resumably; the public entry.

:func:`fit` prepares the rows (:func:`~fairser.training.prepare.prepare_fit`), resolves the
device and precision (:mod:`fairser.device`), joins a ``torchrun`` process group when launched
by one, runs the two-stage loop (:func:`~fairser.training.loop.run_stages`) and returns a
:class:`~fairser.training.model.FittedModel`. With a workdir, rank 0 alone writes checkpoints
and the finished model; the other ranks wait for it at a barrier.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairser.device import device_metadata, resolve_device, resolve_precision
from fairser.errors import TrainingError
from fairser.levers import GenderEraser, GroupThresholds, QuadraticGenderEraser
from fairser.training.checkpoint import Checkpointer, atomic_write_text
from fairser.training.config import TrainConfig
from fairser.training.config_io import coerce_config
from fairser.training.data import FeatureSource
from fairser.training.distributed import current, rank_device
from fairser.training.loop import run_stages
from fairser.training.model import META_FILE, FittedModel, Outputs
from fairser.training.output_levers import (
    apply_embedding_eraser,
    corpus_gender,
    parity_gap,
    refit_head,
    self_train_head,
)
from fairser.training.prepare import Prepared, prepare_fit
from fairser.training.steps import Runtime

__all__ = ["FittedModel", "Outputs", "Prepared", "fit", "prepare_fit"]


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _fit_output_levers(
    model: FittedModel, prep: Prepared, features: FeatureSource, *, seed: int
) -> None:
    """After the loop: the embedding eraser (+ head refit) and the parity thresholds.

    Both read the lever target rows' GENDER (never their emotion: the column is gone) and
    the model's own outputs; the results are recorded in ``model.history["levers"]``.
    """
    cfg, setup = prep.config, prep.levers
    if setup is None or (
        cfg.thresholds == "none"
        and cfg.self_train == 0
        and not cfg.erase_embedding
    ):
        return
    binary = cfg.task == "binary"
    record: dict[str, Any] = {}
    emb_tr = None  # the erased source training embeddings, once the eraser is fitted
    if cfg.erase_embedding:
        tr = prep.train_rows
        e_tr = model.outputs(tr, features, warn=False).embedding
        e_tg = model.outputs(setup.rows, features, warn=False).embedding
        g_tr, g_tg = setup.train_genders, setup.genders
        corpora = [tr["corpus"].astype(str).to_numpy(), setup.rows["corpus"].astype(str).to_numpy()]
        e_fit = [e_tr, e_tg]
        if cfg.erase == "leace":  # centre each corpus: erase the WITHIN-corpus gender direction
            e_all, c_all = np.concatenate(e_fit), np.concatenate(corpora)
            for c in np.unique(c_all):
                e_all[c_all == c] -= e_all[c_all == c].mean(0)
            e_fit = [e_all[: len(e_tr)], e_all[len(e_tr) :]]
        # the concept is (corpus, gender): each corpus's genders are made alike
        keyed = [corpus_gender(c, g) for c, g in zip(corpora, (g_tr, g_tg), strict=True)]
        x = np.concatenate([e[k != None] for e, k in zip(e_fit, keyed, strict=True)])  # noqa: E711
        g = np.concatenate([k[k != None] for k in keyed])  # noqa: E711
        if len({v.rsplit("/", 1)[1] for v in g.tolist()}) < 2:
            raise TrainingError(
                f"erase: {cfg.erase} needs rows of two genders in the source training and "
                f"target rows, found {sorted(set(g.tolist()))}; check the {cfg.attribute} column"
            )
        eraser = (GenderEraser if cfg.erase == "leace" else QuadraticGenderEraser)(
            strength=cfg.erase_strength
        ).fit(x, sensitive_features=g)
        erased = apply_embedding_eraser(eraser, e_tr, keyed[0], what="fit", warn=False)
        torch.manual_seed(seed)
        record["head_refit"] = refit_head(
            model.net,
            erased,
            prep.data.train.y,
            class_weights=prep.data.class_weights,
            binary=binary,
            weight_decay=cfg.weight_decay,
        )
        model.levers.embedding_eraser = eraser
        emb_tr = erased
    if cfg.self_train > 0:  # after the eraser: the embeddings as predict will see them
        if emb_tr is not None:  # erased above: reuse the embeddings the eraser step computed
            emb_tg = apply_embedding_eraser(eraser, e_tg, keyed[1], what="fit", warn=False)
        else:
            emb_tr = model.outputs(prep.train_rows, features, warn=False).embedding
            emb_tg = model.outputs(setup.rows, features, warn=False).embedding
        known = np.asarray([v is not None for v in setup.genders], dtype=bool)
        torch.manual_seed(seed)
        record["self_train"] = self_train_head(
            model.net,
            emb_tr,
            prep.data.train.y,
            emb_tg[known],
            np.asarray(setup.genders, dtype=object)[known],
            fraction=cfg.self_train,
            rounds=cfg.self_train_rounds,
            class_weights=prep.data.class_weights,
            binary=binary,
            weight_decay=cfg.weight_decay,
        )
    if cfg.thresholds == "parity":
        out = model.outputs(setup.rows, features, warn=False)
        known = np.asarray([v is not None for v in setup.genders], dtype=bool)
        thr = GroupThresholds(strength=cfg.threshold_strength).fit(
            out.proba[known], groups=setup.genders[known]
        )
        model.levers.thresholds = thr
        n_classes = 2 if binary else out.proba.shape[1]
        record["thresholds"] = {
            "rows": int(known.sum()),
            "fitted_on": "stage-2 target rows" if setup.stage2 else "target rows passed to fit",
            "dsp_plain": parity_gap(out.labels, setup.genders, n_classes),
            "dsp_parity": parity_gap(
                thr.predict(out.proba[known], groups=setup.genders[known]),
                setup.genders[known],
                n_classes,
            ),
        }
    model.history["levers"] = record


def fit(
    *,
    source: pd.DataFrame,
    target: pd.DataFrame | None,
    features: FeatureSource,
    method: str,
    emotion: str | Sequence[str] | None,
    config: TrainConfig | dict[str, Any] | None = None,
    seed: int = 0,
    workdir: str | Path | None = None,
    progress: bool = True,
    device: str | None = None,
    precision: str | None = None,
    num_workers: int | None = None,
) -> FittedModel:
    """Train one model.

    Launched by ``torchrun`` with an initialised process group (``fairser train`` joins it,
    see :func:`fairser.training.distributed.process_group`), every rank calls ``fit`` with the
    same arguments and trains its share of every batch with DistributedDataParallel.

    Parameters
    ----------
    source : pandas.DataFrame
        Source manifest: rows of split ``config.source_train_split`` train the model, rows of
        ``config.source_dev_split`` select it (early stopping). Emotion and attribute are used.
    target : pandas.DataFrame or None
        Target manifest: rows of ``config.target_split`` (all rows when None) are used in stage
        2 with their attribute only (or pseudo attributes); target emotion labels never.
        May be None for ``source-only``.
    features : FeatureSet
        Features of every used row (``features[f"{corpus}/{utt_id}"]`` of shape (L, T, D)).
    method : str
        A name of :data:`fairser.methods.METHODS`.
    emotion : str or list of str or None
        Binary task: the positive emotion. Multiclass: None (config ``classes``) or the classes.
    config : TrainConfig or dict, optional
        Options (validated; unknown keys are errors).
    seed : int
        Seed of every random choice: same seed, same model.
    workdir : str or pathlib.Path, optional
        Folder for checkpoints (``checkpoints/``, removed once the run is finished), the
        resolved config (``config.json``) and the finished model (``model/``); a rerun after
        a kill resumes from the last finished epoch, and a rerun of a finished run loads it.
    progress : bool
        Show progress bars.
    device, precision : str, optional
        Override the config's ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)
        and ``precision`` (``fp32``, ``bf16``, ``fp16``); both are recorded in the model's
        metadata.
    num_workers : int, optional
        Override the config's ``num_workers`` (DataLoader worker processes).

    Returns
    -------
    FittedModel

    Raises
    ------
    TrainingError
        For unusable data (missing rows, features or classes), naming the fix.
    ConfigError
        For an invalid config or method name.
    """
    t0 = time.perf_counter()
    cfg = coerce_config(config)
    override = {"device": device, "precision": precision, "num_workers": num_workers}
    override = {k: v for k, v in override.items() if v is not None}
    if override:
        cfg = coerce_config({**cfg.model_dump(mode="json"), **override})
    dist = current()
    dev = rank_device(resolve_device(cfg.device), dist)
    rt = Runtime(
        device=dev,
        precision=resolve_precision(cfg.precision, dev),
        dist=dist,
        num_workers=cfg.num_workers,
    )
    prep = prepare_fit(
        source=source,
        target=target,
        features=features,
        method=method,
        emotion=emotion,
        config=cfg,
        seed=seed,
    )
    meta, data = prep.meta, prep.data
    fingerprint = meta["fingerprint"]
    wd = Path(workdir) if workdir is not None else None
    if wd is not None and (wd / "model" / META_FILE).exists():
        done = FittedModel.load(wd / "model", device=str(dev), num_workers=cfg.num_workers)
        if done.meta.get("fingerprint") == fingerprint:
            return done
        raise TrainingError(
            f"{wd}: holds a finished run with another config, data, method or seed; "
            "use another workdir or delete this one"
        )
    meta.update(device_metadata(dev, rt.precision), world_size=dist.world)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with _threads(cfg.num_threads), torch.random.fork_rng(devices=cuda):
        net = prep.build_net().to(dev)
        ckpt = Checkpointer(wd / "checkpoints", fingerprint) if wd is not None else None
        if wd is not None and dist.is_main:
            atomic_write_text(
                wd / "config.json", json.dumps(meta["config"], indent=1, sort_keys=True)
            )
        history = run_stages(
            net,
            method=prep.method,
            cfg=cfg,
            data=data,
            seed=seed,
            checkpointer=ckpt,
            progress=progress,
            runtime=rt,
        )
    history.update(prep.extra)
    history["layer_weights"] = net.project.layers.weights().tolist()
    history["n_rows"] = {
        "source_train": len(data.train),
        "source_dev": len(data.dev),
        "target": 0 if data.target is None else len(data.target),
    }
    history["seconds"] = time.perf_counter() - t0
    model = FittedModel(
        net,
        meta=meta,
        history=history,
        input_stats=prep.input_stats,
        runtime=Runtime(
            device=dev, precision=resolve_precision("fp32", dev), num_workers=cfg.num_workers
        ),
        levers=prep.levers.levers if prep.levers is not None else None,
    )
    with _threads(cfg.num_threads):
        _fit_output_levers(model, prep, features, seed=seed)
    if wd is not None and dist.is_main:
        model.save(wd / "model")
        # the finished model supersedes the checkpoints (a rerun loads the model)
        shutil.rmtree(wd / "checkpoints", ignore_errors=True)
    dist.barrier()  # other ranks return once rank 0 has written the model
    return model
