"""The two-stage training loop.

Stage 1 trains the emotion classifier on source batches. Stage 2 (methods that use the target)
continues on mixed source + target batches with the method's extra terms. Each stage stops
early on the SOURCE dev UAR and ends restored to its best epoch. Every epoch's randomness
(batch plan, dropout) is derived from (seed, stage, epoch), so a resumed run repeats exactly
what an uninterrupted one does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fairser.methods import Method, StepContext, group_table_weights
from fairser.models import FairSERNet, NetOutput, beta_at, weighted_bce, weighted_ce
from fairser.training.checkpoint import Checkpointer, model_part, optimizer_from_tensors
from fairser.training.config import TrainConfig
from fairser.training.data import Split
from fairser.training.samplers import epoch_rng, mixed_plan, source_plan

__all__ = ["FitData", "run_stages", "unweighted_average_recall"]


@dataclass(frozen=True)
class FitData:
    """Everything the loop trains on (built once per fit).

    Attributes
    ----------
    train, dev : Split
        Source training and dev rows (labels set on every row).
    target : Split or None
        Target rows (groups only) for stage 2.
    n_classes : int
        2 for binary, C for multiclass.
    n_groups : int
        Number of attribute values.
    class_weights : numpy.ndarray
        (n_classes,) loss weight per class (ones unless balance is ``weights``).
    train_anchors, target_anchors : torch.Tensor or None
        (N, T) anchor indices for the anchors alignment.
    """

    train: Split
    dev: Split
    target: Split | None
    n_classes: int
    n_groups: int
    class_weights: np.ndarray
    train_anchors: torch.Tensor | None = None
    target_anchors: torch.Tensor | None = None


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


def unweighted_average_recall(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y`` (balanced accuracy)."""
    classes = np.unique(y)
    if len(classes) == 0:
        return float("nan")
    return float(np.mean([(pred[y == c] == c).mean() for c in classes]))


def _take(split: Split, idx: np.ndarray, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and mask of rows ``idx``, cut or zero-padded to ``t`` frames."""
    ii = torch.from_numpy(idx)
    x, m = split.x[ii], split.mask[ii]
    have = x.shape[2]
    if have >= t:
        return x[:, :, :t], m[:, :t]
    return F.pad(x, (0, 0, 0, t - have)), F.pad(m, (0, t - have))


def _slice(out: NetOutput, a: int, b: int) -> NetOutput:
    def cut(v: torch.Tensor | None) -> torch.Tensor | None:
        return None if v is None else v[a:b]

    return NetOutput(
        out.logits[a:b],
        out.embedding[a:b],
        out.frames[a:b],
        cut(out.gender_logits),
        cut(out.gender_hidden),
    )


def _ec_loss(
    logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, binary: bool
) -> torch.Tensor:
    if binary:
        return weighted_bce(logits, y, w)
    return weighted_ce(logits, y, w)


def _hard(logits: torch.Tensor, binary: bool) -> torch.Tensor:
    return (logits > 0).long() if binary else logits.argmax(-1)


@torch.no_grad()
def evaluate(
    net: FairSERNet, split: Split, *, binary: bool, n_classes: int, batch_size: int
) -> tuple[float, float]:
    """(UAR, mean cross-entropy) of ``net`` on a labelled split."""
    net.eval()
    preds, losses = [], []
    for i in range(0, len(split), batch_size):
        idx = np.arange(i, min(i + batch_size, len(split)))
        t = int(split.lengths[idx].max())
        x, m = _take(split, idx, t)
        logits = net(x, m, gender=False).logits
        y = split.y[idx]
        losses.append(float(_ec_loss(logits, y, None, binary)) * len(idx))
        preds.append(_hard(logits, binary).numpy())
    net.train()
    y = split.y.numpy()
    return unweighted_average_recall(y, np.concatenate(preds)), sum(losses) / len(split)


def _seed_for(seed: int, stage: int, epoch: int) -> int:
    return int(epoch_rng(seed, stage, epoch, 1).integers(0, 2**62))


def run_stages(
    net: FairSERNet,
    *,
    method: Method,
    cfg: TrainConfig,
    data: FitData,
    seed: int,
    checkpointer: Checkpointer | None,
    progress: bool,
) -> dict[str, Any]:
    """Train ``net`` in place through stage 1 and (if the method uses the target) stage 2.

    Parameters
    ----------
    net : FairSERNet
        Network with input statistics already set.
    method : Method
        The training method.
    cfg : TrainConfig
        Options.
    data : FitData
        Pre-stacked data.
    seed : int
        Seed of every random choice.
    checkpointer : Checkpointer or None
        Where to checkpoint each epoch and resume from.
    progress : bool
        Show a rich progress bar.

    Returns
    -------
    dict
        ``epochs`` (one dict per epoch with the losses and the dev UAR), ``best_epoch`` per
        stage, ``group_table`` (the final per-(group, class) weights).
    """
    binary = cfg.task == "binary"
    y_tr = data.train.y.numpy()
    g_tr = data.train.g.numpy()
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
    stages = [1] + ([2] if method.uses_target and cfg.stage2_epochs > 0 else [])
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not progress,
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
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            resume = None
            task = bar.add_task(f"stage {stage}", total=n_epochs, completed=state.epoch, info="")
            for epoch in range(state.epoch, n_epochs):
                if state.bad_epochs >= cfg.patience:  # stopped just before a kill
                    break
                rec, pred = _run_epoch(
                    net,
                    opt,
                    method=method,
                    cfg=cfg,
                    data=data,
                    seed=seed,
                    stage=stage,
                    epoch=epoch,
                    table=table,
                    binary=binary,
                )
                ok = pred >= 0
                if ok.any():
                    table = method.update_table(table, y=y_tr[ok], g=g_tr[ok], pred=pred[ok])
                uar, dev_loss = evaluate(
                    net,
                    data.dev,
                    binary=binary,
                    n_classes=data.n_classes,
                    batch_size=cfg.eval_batch_size,
                )
                rec.update(stage=stage, epoch=epoch, dev_uar=uar, dev_loss=dev_loss)
                state.history.append(rec)
                improved = uar > state.best_score + 1e-9 or (
                    abs(uar - state.best_score) <= 1e-9 and dev_loss < state.best_loss
                )
                if improved:
                    state.best_score, state.best_loss, state.best_epoch = uar, dev_loss, epoch
                    state.bad_epochs = 0
                    best_state = {k: v.clone() for k, v in net.state_dict().items()}
                    if checkpointer is not None:
                        checkpointer.save_best(best_state, {"stage": stage, "epoch": epoch})
                else:
                    state.bad_epochs += 1
                state.epoch = epoch + 1
                if checkpointer is not None:
                    checkpointer.save_last(
                        net=net, optimizer=opt, table=table, meta=state.to_meta()
                    )
                info = " ".join(
                    f"{k}={v:.3f}"
                    for k, v in rec.items()
                    if isinstance(v, float) and k not in ("seconds",)
                )
                bar.update(task, completed=epoch + 1, info=info)
            net.load_state_dict(best_state)
            state.done = True
            state.best_epochs[f"stage{stage}"] = state.best_epoch
            if checkpointer is not None:
                checkpointer.save_last(net=net, optimizer=None, table=table, meta=state.to_meta())
    return {
        "epochs": state.history,
        "best_epoch": dict(state.best_epochs),
        "group_table": table.tolist(),
    }


def _run_epoch(
    net: FairSERNet,
    opt: torch.optim.Optimizer,
    *,
    method: Method,
    cfg: TrainConfig,
    data: FitData,
    seed: int,
    stage: int,
    epoch: int,
    table: np.ndarray,
    binary: bool,
) -> tuple[dict[str, Any], np.ndarray]:
    """One epoch: the mean of each loss term, and the epoch's predictions (-1: row unseen)."""
    t0 = time.perf_counter()
    torch.manual_seed(_seed_for(seed, stage, epoch))
    rng = epoch_rng(seed, stage, epoch)
    tr = data.train
    y_np = tr.y.numpy()
    w_rows = group_table_weights(table, y_np, tr.g.numpy())
    if cfg.balance == "weights":
        w_rows = w_rows * data.class_weights[y_np]
    w_all = torch.from_numpy(w_rows.astype(np.float32))
    balanced = cfg.balance == "sampler"
    if stage == 1:
        plan: list[tuple[np.ndarray, np.ndarray | None]] = [
            (b, None)
            for b in source_plan(y_np, batch_size=cfg.batch_size, balanced=balanced, rng=rng)
        ]
    else:
        assert data.target is not None
        plan = list(
            mixed_plan(
                y_np,
                len(data.target),
                batch_size=cfg.batch_size,
                target_fraction=cfg.target_fraction,
                balanced=balanced,
                rng=rng,
            )
        )
    pred = np.full(len(tr), -1, dtype=np.int64)
    sums: dict[str, float] = {}
    n_steps = len(plan)
    net.train()
    for step, (si, ti) in enumerate(plan):
        if stage == 2:
            progress = (epoch * n_steps + step) / max(1, cfg.stage2_epochs * n_steps)
            beta = beta_at(progress, beta=cfg.beta, schedule=cfg.beta_schedule)
            net.set_beta(beta)
            sums["beta"] = sums.get("beta", 0.0) + beta
        t_len = int(tr.lengths[si].max())
        if ti is not None:
            t_len = max(t_len, int(data.target.lengths[ti].max()))
        xs, ms = _take(tr, si, t_len)
        if ti is not None:
            xt, mt = _take(data.target, ti, t_len)
            out = net(torch.cat([xs, xt]), torch.cat([ms, mt]))
            out_s, out_t = _slice(out, 0, len(si)), _slice(out, len(si), len(si) + len(ti))
        else:
            out_s, out_t = net(xs, ms, gender=False), None
        ii = torch.from_numpy(si)
        y = tr.y[ii]
        ec = _ec_loss(out_s.logits, y, w_all[ii], binary)
        terms: dict[str, torch.Tensor] = {"ec": ec}
        if out_t is not None:
            ctx = StepContext(
                source=out_s,
                target=out_t,
                source_groups=tr.g[ii],
                target_groups=data.target.g[torch.from_numpy(ti)],
                source_anchors=None
                if data.train_anchors is None
                else _cut(data.train_anchors, si, t_len),
                target_anchors=None
                if data.target_anchors is None
                else _cut(data.target_anchors, ti, t_len),
            )
            terms.update(method.stage2_terms(ctx))
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        pred[si] = _hard(out_s.logits.detach(), binary).numpy()
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
    rec: dict[str, Any] = {k: v / max(1, n_steps) for k, v in sums.items()}
    rec["seconds"] = time.perf_counter() - t0
    return rec, pred


def _cut(anchors: torch.Tensor, idx: np.ndarray, t: int) -> torch.Tensor:
    a = anchors[torch.from_numpy(idx)]
    if a.shape[1] >= t:
        return a[:, :t]
    return F.pad(a, (0, t - a.shape[1]), value=-1)
