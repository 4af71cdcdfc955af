"""One epoch of optimisation steps, and batched forward passes for evaluation and prediction.

Everything here takes a :class:`Runtime` (device, precision plan, distributed rank, DataLoader
workers) and runs the same code on every device: batches come from the feature store through
a DataLoader, are moved to the device, and run under the precision plan's autocast (with a
GradScaler for fp16 on CUDA). A non-finite loss or dev score stops the fit with a
:class:`~fairser.errors.TrainingError` naming the stage, the epoch and the likely fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fairser.decision import decide
from fairser.device import PrecisionPlan, resolve_precision
from fairser.errors import TrainingError
from fairser.methods import Method, StepContext, group_table_weights
from fairser.metrics import uar_from_codes
from fairser.models import FairSERNet, NetOutput, beta_at, weighted_bce, weighted_ce
from fairser.training.config import TrainConfig
from fairser.training.distributed import Dist
from fairser.training.output_levers import parity_gap
from fairser.training.rows import Batch, MutableBatchSampler, StreamDataset, make_loader
from fairser.training.samplers import length_order, mixed_plan, shard, source_plan

__all__ = ["Feeds", "Runtime", "evaluate", "forward_batches", "run_epoch", "scores"]


@dataclass(frozen=True)
class Runtime:
    """Where and how a fit or a prediction runs.

    Attributes
    ----------
    device : torch.device
        Device of the network and of every batch.
    precision : PrecisionPlan
        Autocast dtype and loss scaling (:func:`fairser.device.resolve_precision`).
    dist : Dist
        This process's rank in a distributed fit (rank 0 of 1 otherwise).
    num_workers : int
        DataLoader worker processes.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: PrecisionPlan = field(
        default_factory=lambda: resolve_precision("fp32", torch.device("cpu"))
    )
    dist: Dist = field(default_factory=Dist)
    num_workers: int = 0

    @property
    def pin(self) -> bool:
        """Pin host memory of batches (CUDA only)."""
        return self.device.type == "cuda"


@dataclass
class Feeds:
    """The DataLoaders of a fit, kept for its whole length (their workers persist)."""

    train: StreamDataset
    dev: StreamDataset
    rt: Runtime
    select: StreamDataset | None = None
    _samplers: dict[str, MutableBatchSampler] = field(default_factory=dict)
    _loaders: dict[str, Any] = field(default_factory=dict)
    _kept: dict[str, tuple[tuple[bytes, ...], list[Batch]]] = field(default_factory=dict)

    def batches(self, which: str, batches: list[np.ndarray]) -> Iterator[Batch]:
        """Batches of ``which`` (``train`` or ``dev``) in the order given (global indices)."""
        if which not in self._loaders:
            self._samplers[which] = MutableBatchSampler()
            self._loaders[which] = make_loader(
                getattr(self, which),
                self._samplers[which],
                num_workers=self.rt.num_workers,
                pin=self.rt.pin,
            )
        self._samplers[which].batches = batches
        return iter(self._loaders[which]) if batches else iter(())

    def fixed_batches(self, which: str, batches: list[np.ndarray]) -> Iterator[Batch]:
        """Batches of an evaluation split (``dev``, ``select``: the same plan every epoch).

        When the split's rows are kept in memory (its dataset caches them, no workers), the
        padded batches are built once and served again while the plan is unchanged (a padded
        copy of the split's rows, which all fit in ``cache_mb``); otherwise they stream as
        :meth:`batches` does.
        """
        if getattr(self, which).cache is None or self.rt.num_workers > 0:
            return self.batches(which, batches)
        key = tuple(b.tobytes() for b in batches)
        kept = self._kept.get(which)
        if kept is None or kept[0] != key:
            kept = (key, list(self.batches(which, batches)))
            self._kept[which] = kept
        return iter(kept[1])


def scores(logits: torch.Tensor, binary: bool) -> torch.Tensor:
    """P(positive) (binary) or class probabilities (multiclass), float32."""
    logits = logits.float()
    return torch.sigmoid(logits) if binary else torch.softmax(logits, -1)


def _ec_loss(
    logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, binary: bool
) -> torch.Tensor:
    if binary:
        return weighted_bce(logits.float(), y, w)
    return weighted_ce(logits.float(), y, w)


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


def forward_batches(
    net: FairSERNet, batches: Iterable[Batch], rt: Runtime, *, gender: bool = True
) -> Iterator[tuple[Batch, NetOutput]]:
    """Inference-mode forward passes over ``batches``, in order."""
    net.eval()
    with torch.inference_mode():
        for batch in batches:
            x = batch.x.to(rt.device, non_blocking=True)
            with rt.precision.autocast(rt.device):
                out = net(x, batch.mask(rt.device), gender=gender)
            yield batch, out


def eval_batches(n: int, lengths: np.ndarray, batch_size: int, *, by_length: bool) -> list:
    """Batches covering rows 0..n-1 once: consecutive rows, or (``by_length``) longest first."""
    if by_length:
        return length_order(lengths, batch_size)
    return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def evaluate(
    net: FairSERNet,
    feeds: Feeds,
    *,
    y: np.ndarray,
    binary: bool,
    cfg: TrainConfig,
    rt: Runtime,
    where: str = "dev",
) -> tuple[float, float]:
    """(UAR, mean cross-entropy) of ``net`` on the labelled rows of ``feeds.dev``.

    In a distributed fit each rank scores a share of the batches and the results are merged,
    so that every rank gets the same numbers.

    Raises
    ------
    TrainingError
        When the network's scores are non-finite.
    """
    rt = feeds.rt
    split = feeds.dev.splits[0]
    batches = eval_batches(len(split), split.lengths, cfg.eval_batch_size, by_length=cfg.bucketing)
    mine = batches[rt.dist.rank :: rt.dist.world]
    pred = np.full(len(split), -1, np.int64)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    for batch, out in forward_batches(net, feeds.fixed_batches("dev", mine), rt, gender=False):
        yb = torch.from_numpy(y[batch.index]).to(rt.device)
        loss_sum[0] += float(_ec_loss(out.logits, yb, None, binary)) * len(batch.index)
        p = scores(out.logits, binary)
        loss_sum[1] += float((~torch.isfinite(p)).sum())
        pred[batch.index] = decide(p.cpu().numpy())
    rt.dist.sum_(loss_sum)
    if not bool(loss_sum[1] == 0) or not np.isfinite(float(loss_sum[0])):
        raise TrainingError(
            f"{where}: the model's scores on the source dev rows are not finite; lower the "
            "learning rate (training.lr / stage2_lr) or check the features for extreme values"
        )
    mask = np.zeros(len(split), bool)
    for b in mine:
        mask[b] = True
    pred = rt.dist.gather_rows(pred, mask)
    net.train()
    # Model selection: the mean recall over the classes the dev split has (lenient).
    uar = uar_from_codes(np.asarray(y, np.int64), np.asarray(pred, np.int64), absent_class="skip")
    return uar, float(loss_sum[0]) / len(split)


def target_gap(net: FairSERNet, feeds: Feeds, data: Any, *, cfg: TrainConfig, rt: Runtime) -> float:
    """Demographic-parity gap of ``net``'s decisions on ``feeds.select`` by
    ``data.select_groups`` (``selection: target-parity``; every rank computes all of it)."""
    split = feeds.select.splits[0]
    batches = eval_batches(len(split), split.lengths, cfg.eval_batch_size, by_length=cfg.bucketing)
    binary = cfg.task == "binary"
    pred = np.full(len(split), -1, np.int64)
    kept = feeds.fixed_batches("select", batches)
    for batch, out in forward_batches(net, kept, rt, gender=False):
        pred[batch.index] = decide(scores(out.logits, binary).cpu().numpy())
    net.train()
    gap = parity_gap(pred, data.select_groups, data.n_classes)
    return 0.0 if not np.isfinite(gap) else gap


def _plan(cfg: TrainConfig, data: Any, stage: int, rng: np.random.Generator) -> list:
    y = data.train.y
    balanced = cfg.balance == "sampler"
    lengths = data.train.lengths if cfg.bucketing else None
    if stage == 1:
        return [
            (b, None)
            for b in source_plan(
                y, batch_size=cfg.batch_size, balanced=balanced, rng=rng, lengths=lengths
            )
        ]
    return mixed_plan(
        y,
        len(data.target),
        batch_size=cfg.batch_size,
        target_fraction=cfg.target_fraction,
        balanced=balanced,
        rng=rng,
        lengths=lengths,
        target_lengths=data.target.lengths if cfg.bucketing else None,
    )


def _non_finite(stage: int, epoch: int, step: int, n: int, value: str, cfg: TrainConfig) -> str:
    lr_key, lr = ("lr", cfg.lr) if stage == 1 else ("stage2_lr", cfg.resolved_stage2_lr)
    return (
        f"stage {stage}, epoch {epoch + 1}, step {step + 1} of {n}: the training {value} is "
        f"not finite; the learning rate is probably too high (training.{lr_key} = {lr:g}): "
        "lower it, or check the features for extreme values"
    )


def run_epoch(
    model: torch.nn.Module,
    net: FairSERNet,
    opt: torch.optim.Optimizer,
    *,
    method: Method,
    cfg: TrainConfig,
    data: Any,
    feeds: Feeds,
    seed_torch: int,
    stage: int,
    epoch: int,
    rng: np.random.Generator,
    table: np.ndarray,
    scaler: torch.amp.GradScaler | None,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """One epoch: the mean of each loss term, and the epoch's predictions (-1: row unseen).

    ``model`` is what runs the steps (``net`` itself, or its DistributedDataParallel wrapper);
    ``on_step(done, total)`` is called after every step (progress display).
    """
    t0 = time.perf_counter()
    rt = feeds.rt
    dev, dist = rt.device, rt.dist
    binary = cfg.task == "binary"
    torch.manual_seed(seed_torch + dist.rank)
    tr, tg = data.train, data.target
    w_rows = group_table_weights(table, tr.y, tr.g)
    if cfg.balance == "weights":
        w_rows = w_rows * data.class_weights[tr.y]
    w_all = torch.from_numpy(w_rows.astype(np.float32)).to(dev)
    y_all = torch.from_numpy(tr.y).to(dev)
    g_all = torch.from_numpy(tr.g).to(dev)
    g_tgt = None if tg is None else torch.from_numpy(tg.g).to(dev)
    full_plan = _plan(cfg, data, stage, rng)
    if dist.active and min(len(si) for si, _ in full_plan) < dist.world:
        raise TrainingError(
            f"stage {stage}: a batch of {min(len(si) for si, _ in full_plan)} source row(s) "
            f"cannot be shared by {dist.world} ranks; raise batch_size or use fewer processes"
        )
    plan = [
        (shard(si, dist.rank, dist.world), None if ti is None else shard(ti, dist.rank, dist.world))
        for si, ti in full_plan
    ]
    # DDP averages the ranks' gradients: weighting each rank's mean emotion loss by its share
    # of the batch makes that average the gradient of the whole batch's mean loss
    share = [
        len(si) * dist.world / len(full) for (si, _), (full, _) in zip(plan, full_plan, strict=True)
    ]
    n_tr = len(tr)
    batches = [si if ti is None else np.concatenate([si, ti + n_tr]) for si, ti in plan]
    pred = np.full(n_tr, -1, dtype=np.int64)
    sums: dict[str, torch.Tensor] = {}
    n_steps = len(plan)
    check_grads = dist.active and scaler is None
    model.train()
    for step, ((si, ti), batch) in enumerate(
        zip(plan, feeds.batches("train", batches), strict=True)
    ):
        if stage == 2:
            progress = (epoch * n_steps + step) / max(1, cfg.stage2_epochs * n_steps)
            beta = beta_at(progress, beta=cfg.beta, schedule=cfg.beta_schedule)
            net.set_beta(beta)
            sums["beta"] = sums.get("beta", 0.0) + beta
        x = batch.x.to(dev, non_blocking=True)
        mask = batch.mask(dev)
        t_len = x.shape[2]
        ns = len(si)
        ii = torch.from_numpy(si).to(dev)
        with rt.precision.autocast(dev):
            if ti is not None:
                out = model(x, mask)
                out_s, out_t = _slice(out, 0, ns), _slice(out, ns, ns + len(ti))
            else:
                out_s, out_t = model(x, mask, gender=False), None
            ec = _ec_loss(out_s.logits, y_all[ii], w_all[ii], binary)
            terms: dict[str, torch.Tensor] = {"ec": ec * share[step] if dist.active else ec}
            if out_t is not None:
                ctx = StepContext(
                    source=out_s,
                    target=out_t,
                    source_groups=g_all[ii],
                    target_groups=g_tgt[torch.from_numpy(ti).to(dev)],
                    source_anchors=None
                    if data.train_anchors is None
                    else data.train_anchors.cut(si, t_len, dev),
                    target_anchors=None
                    if data.target_anchors is None
                    else data.target_anchors.cut(ti, t_len, dev),
                )
                terms.update(method.stage2_terms(ctx))
            loss = sum(terms.values())
        value = float(loss.detach())
        if not np.isfinite(value) and not dist.active:
            raise TrainingError(_non_finite(stage, epoch, step, n_steps, "loss", cfg))
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        if cfg.grad_clip > 0 or check_grads:
            norm = torch.nn.utils.clip_grad_norm_(
                net.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
            )
            if check_grads and not bool(torch.isfinite(norm)):
                raise TrainingError(_non_finite(stage, epoch, step, n_steps, "gradient", cfg))
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        pred[si] = decide(scores(out_s.logits.detach(), binary).cpu().numpy())
        sums["loss"] = sums.get("loss", 0.0) + value
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        if on_step is not None:
            on_step(step + 1, n_steps)
    keys = list(sums)
    tot = dist.sum_(torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64))
    rec: dict[str, Any] = {
        k: float(v) / dist.world / max(1, n_steps) for k, v in zip(keys, tot, strict=True)
    }
    if not np.isfinite(rec.get("loss", 0.0)):
        raise TrainingError(_non_finite(stage, epoch, n_steps - 1, n_steps, "loss", cfg))
    seen = np.zeros(n_tr, bool)
    for si, _ in plan:
        seen[si] = True
    pred = dist.gather_rows(pred, seen)
    rec["seconds"] = time.perf_counter() - t0
    return rec, pred


def pad_to(x: torch.Tensor, t: int) -> torch.Tensor:
    """(B, L, T, D) cut or zero-padded to ``t`` frames."""
    have = x.shape[2]
    return x[:, :, :t] if have >= t else F.pad(x, (0, 0, 0, t - have))
