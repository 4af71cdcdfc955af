"""One fit as an independent task: train (or the linear baseline), score, store its record.

:func:`run_fit` is what every executor runs, in this process or in a worker: it fits the
model of one :class:`~fairser.experiments.planning.FitTask`, scores it on the source test split
and the target's evaluation rows, saves the model, an embedding sample and the per-utterance
predictions, and writes the record last, atomically. A record therefore means a finished fit;
a fit killed midway leaves none and is simply run again (its training resumes from the last
checkpoint in ``work/``). Fits know nothing about executors: everything they need travels in a
picklable :class:`GridContext`. A task flagged ``reprobe`` (a finished fit whose record holds
probes of an older protocol) only rescores its probes from the stored model
(:func:`fairser.experiments.reprobe.rescore_probes`) and is trained again when it cannot.

A fit that fails on its own is recorded with ``status: failed`` and the reason, its result rows
carry no metric (never a constant prediction scored as UAR 0.5 and dSP 0), and the grid goes
on; a rerun tries it again. Failing on its own means: the training call raises
``TrainingError`` (e.g. a diverged loss, no rows of a class), or an arithmetic, runtime, value
or memory error (torch overflowing on a diverged model raises ``RuntimeError``; the record
keeps the traceback), or the fitted model's outputs are NaN or infinite. Warnings of the
model's levers while scoring (e.g. per-speaker statistics adapted to unseen target speakers)
are kept in the record's ``notes``, not printed once per fit. Any other error (a
config, corpus or feature problem) stops the grid, as does an interrupt.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairser.errors import FairserError, TrainingError
from fairser.experiments.backend import Backend
from fairser.experiments.baseline import fit_linear_baseline
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.inputs import GridData, evaluated_rows, source_train
from fairser.experiments.planning import FitTask, training_options
from fairser.experiments.reprobe import rescore_probes
from fairser.experiments.scoring import (
    PROBE_VERSION,
    base_row,
    genders,
    labels,
    model_outputs,
    prediction_frame,
    probe_figures,
    score,
)
from fairser.experiments.store import ResultsStore, safe_name

__all__ = ["FIT_FAILURES", "FitOutcome", "GridContext", "run_fit"]

#: Errors that fail one fit (recorded, the grid goes on) rather than the whole grid.
FIT_FAILURES: tuple[type[BaseException], ...] = (TrainingError, ArithmeticError)

#: Errors of the training call itself that fail its fit (beyond ``TrainingError``).
_TRAINING_CRASHES: tuple[type[BaseException], ...] = (ArithmeticError, RuntimeError, ValueError,
                                                      MemoryError)


class FitCrashed(TrainingError):
    """The training call of one fit raised a non-fairser error (kept with its traceback)."""

    def __init__(self, message: str, trace: str) -> None:
        super().__init__(message)
        self.trace = trace


@dataclass
class GridContext:
    """Everything a fit needs besides its task; sent once to each worker.

    Attributes
    ----------
    cfg : ExperimentConfig
        The experiment.
    backend : Backend
        The lower layers.
    data : GridData
        Rows and features.
    probe_input : dict of str to float
        Input-feature gender probe per corpus.
    root : Path
        The run folder (on a filesystem every worker sees).
    """

    cfg: ExperimentConfig
    backend: Backend
    data: GridData
    probe_input: dict[str, float]
    root: Path


@dataclass(frozen=True)
class FitOutcome:
    """What a finished fit reports back to the grid runner (the record holds the rest).

    Attributes
    ----------
    fit_id : str
        The fit's id.
    key : str
        Its grid coordinates.
    fit_s : float
        Seconds of training.
    target_uar : float
        UAR on the target (NaN when not scored).
    status : str
        ``ok`` or ``failed``.
    reason : str
        Why it failed (empty when ok).
    rescored : bool
        A finished fit whose gender probes were rescored from its stored model (nothing
        trained; :mod:`fairser.experiments.reprobe`).
    """

    fit_id: str
    key: str
    fit_s: float
    target_uar: float
    status: str = "ok"
    reason: str = ""
    rescored: bool = False


def run_fit(ctx: GridContext, task: FitTask) -> FitOutcome:
    """Fit, score and store ``task``; returns a short summary (also for a failed fit)."""
    spec = task.spec
    store = ResultsStore(ctx.root)
    coords = {"method": spec.method, "emotion": spec.emotion, "seed": spec.seed,
              "target": spec.target, "condition": spec.condition, "sweep": dict(spec.sweep)}
    if task.reprobe:  # a finished fit scored with an older probe protocol (reprobe module)
        try:
            rescored = rescore_probes(ctx.cfg, ctx.backend, ctx.data, task, store)
        except FIT_FAILURES:
            rescored = None  # the model does not score any more: train it again
        if rescored is not None:
            return FitOutcome(fit_id=task.fit_id, key=spec.key,
                              fit_s=float(rescored.get("fit_s") or 0.0),
                              target_uar=_target_uar(rescored["rows"]), rescored=True)
    start = time.perf_counter()
    try:
        if spec.is_baseline:
            record = fit_linear_baseline(ctx.cfg, ctx.backend, ctx.data, spec, task.digest,
                                         ctx.probe_input)
        else:
            record = _fit_and_score(ctx, task, store)
    except FIT_FAILURES as exc:
        fit_s = time.perf_counter() - start
        reason = " ".join(str(exc).split()) or type(exc).__name__
        rows = [{**base_row(spec, corpus, role, task.digest, fit_s), "n": len(df),
                 "status": "failed", "reason": reason}
                for corpus, role, df in evaluated_rows(ctx.cfg, ctx.data, spec)]
        store.save(task.fit_id, {"status": "failed", "reason": reason, "rows": rows,
                                 "per_speaker": [], "fit_s": fit_s, "spec": coords,
                                 "config_hash": task.digest,
                                 "traceback": getattr(exc, "trace", None)})
        return FitOutcome(fit_id=task.fit_id, key=spec.key, fit_s=fit_s,
                          target_uar=float("nan"), status="failed", reason=reason)
    for row in record["rows"]:
        row.update(status="ok", reason="")
    store.save_predictions(task.fit_id, pd.concat(record.pop("predictions"), ignore_index=True))
    store.save(task.fit_id, {**record, "status": "ok", "spec": coords,
                             "config_hash": task.digest, "probe_version": PROBE_VERSION})
    return FitOutcome(fit_id=task.fit_id, key=spec.key, fit_s=float(record["fit_s"]),
                      target_uar=_target_uar(record["rows"]))


def _target_uar(rows: list[dict[str, Any]]) -> float:
    uar = next((r.get("uar") for r in rows if r.get("role") == "target"), None)
    return float("nan") if uar is None else float(uar)


def _fit_and_score(ctx: GridContext, task: FitTask, store: ResultsStore) -> dict[str, Any]:
    cfg, backend, data, spec = ctx.cfg, ctx.backend, ctx.data, task.spec
    source = source_train(data, cfg, spec)
    config = backend.train_config(training_options(cfg, spec.sweep, spec.method))
    start = time.perf_counter()
    try:
        model = backend.fit(
            source=source, target=data.adapt[spec.target], features=data.features,
            method=cfg.base_method(spec.method),
            emotion=None if spec.emotion == "all" else spec.emotion,
            config=config, seed=spec.seed,
            workdir=store.root / "work" / safe_name(task.fit_id), progress=False)
    except FairserError:
        raise
    except _TRAINING_CRASHES as exc:
        message = " ".join(str(exc).split())[:300]
        raise FitCrashed(f"training raised {type(exc).__name__}: {message} (a diverged model "
                         "overflows like this: check training.lr)" if "overflow" in message
                         else f"training raised {type(exc).__name__}: {message}",
                         traceback.format_exc()) from exc
    fit_s = time.perf_counter() - start
    rows, speakers, emb_parts, preds, notes = [], [], [], [], []
    for corpus, role, df in evaluated_rows(cfg, data, spec):
        # the levers' fallbacks (e.g. speakers unseen in training) go to the record, not stderr
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            proba, y_pred, emb, gc = model_outputs(model, df, data.features,
                                                   where=f"{task.fit_id} on {corpus}")
        for w in caught:
            line = f"{corpus}: {' '.join(str(w.message).split())}"
            if issubclass(w.category, UserWarning) and line not in notes:
                notes.append(line)
            elif not issubclass(w.category, UserWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        sex = genders(df)
        gc_acc = float(backend.gc_accuracy(sex, gc))
        # an embedding eraser fitted on these rows: probe it cross-fitted (crossfit module)
        probe_acc, probe_mlp, protocol = probe_figures(
            backend, cfg, model, df, data.features, emb, source=source,
            target=data.adapt[spec.target])
        base = base_row(spec, corpus, role, task.digest, fit_s)
        y_true = labels(df, cfg, spec.emotion)
        row, spk = score(backend, cfg, y_true=y_true, y_pred=y_pred, df=df, base=base,
                         gc_acc=gc_acc, probe=probe_acc, probe_mlp=probe_mlp,
                         probe_input=ctx.probe_input.get(corpus, float("nan")),
                         probe_protocol=protocol)
        rows.append(row)
        speakers.extend(spk)
        preds.append(prediction_frame(df, base, y_true, y_pred,
                                      proba if cfg.task == "binary" else None))
        if task.keep_embeddings and cfg.embeddings_per_corpus:
            take = np.random.default_rng(0).permutation(len(df))[:cfg.embeddings_per_corpus]
            take.sort()
            emb_parts.append((emb[take], sex[take], np.full(len(take), corpus, dtype=object),
                              y_true[take]))
    if cfg.save_models:
        store.save_model(task.fit_id, model, {
            "method": spec.method, "trains": cfg.base_method(spec.method),
            "emotion": spec.emotion, "seed": spec.seed,
            "target": spec.target, "condition": spec.condition, "sweep": dict(spec.sweep),
            "task": cfg.task, "emotions": cfg.emotions, "frontend": cfg.features.frontend,
            "layers": cfg.features.layers, "config_hash": task.digest,
            # predict extracts at the features' precision (recorded when not the default)
            **({"features_precision": cfg.features.precision}
               if cfg.features.precision != "fp32" else {})})
    if emb_parts:
        store.save_embeddings(
            task.fit_id, embeddings=np.concatenate([p[0] for p in emb_parts]),
            gender=np.concatenate([p[1] for p in emb_parts]).astype(str),
            corpus=np.concatenate([p[2] for p in emb_parts]).astype(str),
            label=np.concatenate([p[3] for p in emb_parts]))
    history = getattr(model, "history", None)
    return {"rows": rows, "per_speaker": speakers, "fit_s": fit_s, "predictions": preds,
            "history": history if isinstance(history, list | dict) else None,
            "runtime": runtime(model), **({"notes": notes} if notes else {})}


#: Keys of a fitted model's metadata that say where and how it ran.
RUNTIME_KEYS = ("device", "device_name", "precision", "precision_requested", "world_size")


def runtime(model: Any) -> dict[str, Any]:
    """Where a fit ran: its device, device name and precision (from the model's metadata),
    the host, and on CUDA the ``CUDA_VISIBLE_DEVICES`` its worker saw (which physical GPU)."""
    meta = getattr(model, "meta", None)
    info = {k: meta[k] for k in RUNTIME_KEYS if isinstance(meta, dict) and k in meta}
    info["host"] = socket.gethostname()
    if str(info.get("device", "")).startswith("cuda"):
        info["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return info
