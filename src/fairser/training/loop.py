"""The two-stage training loop.

Stage 1 trains the emotion classifier on source batches. Stage 2 (methods that use the target)
continues on mixed source + target batches with the method's extra terms. Each stage stops
early on the SOURCE dev UAR and ends restored to its best epoch. Every epoch's randomness
(batch plan, dropout) is derived from (seed, stage, epoch), so a resumed run repeats exactly
what an uninterrupted one does. This module owns the stage/epoch bookkeeping (early stopping,
best state, checkpoints, the DistributedDataParallel wrapper); the steps of an epoch are in
:mod:`fairser.training.steps`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fairser.methods import Method
from fairser.models import FairSERNet
from fairser.training.anchors import AnchorTable
from fairser.training.checkpoint import Checkpointer, model_part, optimizer_from_tensors
from fairser.training.config import TrainConfig
from fairser.training.data import Split
from fairser.training.distributed import ddp_wrap
from fairser.training.rows import RowReader, StreamDataset, input_bytes
from fairser.training.samplers import epoch_rng
from fairser.training.steps import Feeds, Runtime, evaluate, run_epoch, target_gap

__all__ = ["FitData", "run_stages"]


@dataclass(frozen=True)
class FitData:
    """Everything the loop trains on (built once per fit).

    Attributes
    ----------
    train, dev : Split
        Source training and dev rows (labels set on every row).
    target : Split or None
        Target rows (groups only) for stage 2.
    reader : RowReader
        Reads each row's input from the feature store (per-corpus standardisation included).
    n_classes : int
        2 for binary, C for multiclass.
    n_groups : int
        Number of attribute values.
    class_weights : numpy.ndarray
        (n_classes,) loss weight per class (ones unless balance is ``weights``).
    train_anchors, target_anchors : AnchorTable or None
        Anchor index of every frame, for the anchors alignment.
    select : Split or None
        ``selection: target-parity``: the target rows whose predictions' parity gap is
        penalised in model selection.
    select_groups : numpy.ndarray or None
        Their gender (None where unknown).
    """

    train: Split
    dev: Split
    target: Split | None
    reader: RowReader
    n_classes: int
    n_groups: int
    class_weights: np.ndarray
    train_anchors: AnchorTable | None = None
    target_anchors: AnchorTable | None = None
    select: Split | None = None
    select_groups: np.ndarray | None = None

    def feeds(self, rt: Runtime, *, cache_mb: float = 0.0) -> Feeds:
        """The DataLoaders of a fit on these data.

        When every row's input fits in ``cache_mb`` MiB and rows are read in this process
        (no DataLoader workers), rows are kept once read instead of read every epoch.
        """
        parts = [self.train] + ([self.target] if self.target is not None else [])
        reader = self.reader
        if rt.num_workers > 0:  # workers read for themselves: the pooled-row cache stays here
            reader = reader.with_(cache=None)
        cache = (
            rt.num_workers == 0
            and cache_mb > 0
            and input_bytes(reader, [*parts, self.dev]) <= cache_mb * 2**20
        )
        select = None
        if self.select is not None:
            select = StreamDataset(reader, [self.select], what="target", cache=cache)
        return Feeds(
            train=StreamDataset(reader, parts, what="source train / target", cache=cache),
            dev=StreamDataset(reader, [self.dev], what="source dev", cache=cache),
            rt=rt,
            select=select,
        )


@dataclass
class _StageState:
    stage: int = 1
    epoch: int = 0
    best_score: float = -1.0
    best_loss: float = float("inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    done: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epochs: dict[str, int] = field(default_factory=dict)

    def to_meta(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_loss": self.best_loss if np.isfinite(self.best_loss) else None,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "done": self.done,
            "history": self.history,
            "best_epochs": self.best_epochs,
        }

    @classmethod
    def from_meta(cls, m: dict[str, Any]) -> _StageState:
        bl = m.get("best_loss")
        return cls(
            stage=int(m["stage"]),
            epoch=int(m["epoch"]),
            best_score=float(m["best_score"]),
            best_loss=float("inf") if bl is None else float(bl),
            best_epoch=int(m["best_epoch"]),
            bad_epochs=int(m["bad_epochs"]),
            done=bool(m["done"]),
            history=list(m["history"]),
            best_epochs=dict(m.get("best_epochs", {})),
        )


def _seed_for(seed: int, stage: int, epoch: int) -> int:
    return int(epoch_rng(seed, stage, epoch, 1).integers(0, 2**62))


def _wrap(net: FairSERNet, rt: Runtime) -> torch.nn.Module:
    """``net`` itself, or in a distributed fit its DistributedDataParallel wrapper."""
    return ddp_wrap(net, rt.device) if rt.dist.active else net


def run_stages(
    net: FairSERNet,
    *,
    method: Method,
    cfg: TrainConfig,
    data: FitData,
    seed: int,
    checkpointer: Checkpointer | None,
    progress: bool,
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Train ``net`` in place through stage 1 and (if the method uses the target) stage 2.

    Parameters
    ----------
    net : FairSERNet
        Network with input statistics already set, on ``runtime.device``.
    method : Method
        The training method.
    cfg : TrainConfig
        Options.
    data : FitData
        Rows of the fit and how to read them.
    seed : int
        Seed of every random choice.
    checkpointer : Checkpointer or None
        Where to checkpoint each epoch and resume from (written by rank 0 only).
    progress : bool
        Show a rich progress bar (rank 0 only).
    runtime : Runtime, optional
        Device, precision, rank and workers (default: CPU, fp32, one process, no workers).

    Returns
    -------
    dict
        ``epochs`` (one dict per epoch with the losses and the dev UAR), ``best_epoch`` per
        stage, ``group_table`` (the final per-(group, class) weights).

    Raises
    ------
    TrainingError
        When a loss or a dev score becomes non-finite (naming the stage, epoch and fix).
    """
    rt = runtime or Runtime()
    main = rt.dist.is_main
    writer = checkpointer if main else None
    binary = cfg.task == "binary"
    y_tr, g_tr = data.train.y, data.train.g
    table = method.initial_table(y_tr, g_tr, max(data.n_groups, 1), data.n_classes)
    state = _StageState()
    resume: dict[str, Any] | None = None
    if checkpointer is not None:
        loaded = checkpointer.load_last()
        if loaded is not None:
            tensors, meta = loaded
            net.load_state_dict(model_part(tensors))
            table = tensors["table"].numpy().astype(np.float64)
            state = _StageState.from_meta(meta)
            resume = {"tensors": tensors, "param_groups": meta.get("param_groups", [])}
    model = _wrap(net, rt)
    feeds = data.feeds(rt, cache_mb=cfg.cache_mb)
    scaler = torch.amp.GradScaler(rt.device.type) if rt.precision.use_grad_scaler else None
    stages = [1] + ([2] if method.uses_target and cfg.stage2_epochs > 0 else [])
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not (progress and main),
        transient=False,
    ) as bar:
        for stage in stages:
            if stage < state.stage or (stage == state.stage and state.done):
                continue
            if stage != state.stage:
                state = _StageState(
                    stage=stage, history=state.history, best_epochs=state.best_epochs
                )
                resume = None
            n_epochs = cfg.stage1_epochs if stage == 1 else cfg.stage2_epochs
            lr = cfg.lr if stage == 1 else cfg.resolved_stage2_lr
            opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
            if resume is not None and state.epoch > 0:
                optimizer_from_tensors(opt, resume["tensors"], resume["param_groups"])
            best_state = checkpointer.load_best() if (checkpointer and state.epoch > 0) else None
            if best_state is None:
                best_state = _snapshot(net)
            resume = None
            task = bar.add_task(f"stage {stage}", total=n_epochs, completed=state.epoch, info="")
            steps = bar.add_task("  steps", total=None, info="")
            for epoch in range(state.epoch, n_epochs):
                if state.bad_epochs >= cfg.patience:  # stopped just before a kill
                    break
                rec, pred = _run_epoch(
                    model,
                    net,
                    opt,
                    method=method,
                    cfg=cfg,
                    data=data,
                    feeds=feeds,
                    seed_torch=_seed_for(seed, stage, epoch),
                    stage=stage,
                    epoch=epoch,
                    rng=epoch_rng(seed, stage, epoch),
                    table=table,
                    scaler=scaler,
                    on_step=functools.partial(_show_step, bar, steps),
                )
                ok = pred >= 0
                if ok.any():
                    table = method.update_table(table, y=y_tr[ok], g=g_tr[ok], pred=pred[ok])
                uar, dev_loss = evaluate(
                    net,
                    feeds,
                    y=data.dev.y,
                    binary=binary,
                    cfg=cfg,
                    rt=rt,
                    where=f"stage {stage}, epoch {epoch + 1}",
                )
                rec.update(stage=stage, epoch=epoch, dev_uar=uar, dev_loss=dev_loss)
                if data.select is not None:
                    gap = target_gap(net, feeds, data, cfg=cfg, rt=rt)
                    rec.update(target_dsp=gap, selection_score=uar - cfg.selection_weight * gap)
                    uar = rec["selection_score"]
                state.history.append(rec)
                improved = uar > state.best_score + 1e-9 or (
                    abs(uar - state.best_score) <= 1e-9 and dev_loss < state.best_loss
                )
                if improved:
                    state.best_score, state.best_loss, state.best_epoch = uar, dev_loss, epoch
                    state.bad_epochs = 0
                    best_state = _snapshot(net)
                    if writer is not None:
                        writer.save_best(best_state, {"stage": stage, "epoch": epoch})
                else:
                    state.bad_epochs += 1
                state.epoch = epoch + 1
                if writer is not None:
                    writer.save_last(net=net, optimizer=opt, table=table, meta=state.to_meta())
                info = " ".join(
                    f"{k}={v:.3f}"
                    for k, v in rec.items()
                    if isinstance(v, float) and k not in ("seconds",)
                )
                bar.update(task, completed=epoch + 1, info=info)
            bar.remove_task(steps)
            net.load_state_dict(best_state)
            state.done = True
            state.best_epochs[f"stage{stage}"] = state.best_epoch
            if writer is not None:
                writer.save_last(net=net, optimizer=None, table=table, meta=state.to_meta())
    out = {
        "epochs": state.history,
        "best_epoch": dict(state.best_epochs),
        "group_table": table.tolist(),
    }
    if data.select is not None:
        out["selection"] = {
            "criterion": "source dev UAR - selection_weight x target dSP",
            "selection_weight": cfg.selection_weight,
            "selected": {
                s: next(
                    (r for r in state.history if f"stage{r['stage']}" == s and r["epoch"] == e),
                    None,
                )
                for s, e in state.best_epochs.items()
            },
        }
    return out


def _show_step(bar: Progress, task: Any, done: int, total: int) -> None:
    bar.update(task, completed=done, total=total)


def _snapshot(net: FairSERNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


#: The epoch function (a module attribute, so that tests can interrupt a fit between epochs).
_run_epoch = run_epoch
