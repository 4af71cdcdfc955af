"""Distributed data parallel training: who this process is, and the few collective steps.

A fit launched by ``torchrun`` (the environment holds ``WORLD_SIZE`` > 1) trains one model on
every rank with :class:`torch.nn.parallel.DistributedDataParallel`: gloo on CPU, nccl on CUDA.
Every rank builds the same plan from the same seed and takes its share of every batch
(:func:`fairser.training.samplers.shard`), so all ranks take the same number of steps and the
gradients are averaged over the whole batch. Rank 0 alone writes checkpoints and results; the
other ranks wait at a barrier. Without ``torchrun`` (or with one process) every helper here is
a no-op and nothing distributed is imported into the path.

Every collective, barriers included, gives up after the process group's timeout: torch's
defaults (30 min for gloo, 10 min for nccl) are shorter than the longest legitimate wait of a
run (ranks finishing their extraction shards at different times, rank 0 evaluating while the
others wait), so :func:`process_group` sets it explicitly: ``timeout_s``, else the environment
variable ``FAIRSER_DIST_TIMEOUT_S``, else :data:`DEFAULT_TIMEOUT_S` (4 hours). A rank that
really hangs is therefore reported only after that long; lower it when debugging.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from fairser.errors import ConfigError

__all__ = ["DEFAULT_TIMEOUT_S", "TIMEOUT_ENV", "Dist", "current", "ddp_wrap", "dist_timeout",
           "launched_by_torchrun", "process_group"]

#: Seconds a collective (a barrier included) waits for the other ranks before failing.
DEFAULT_TIMEOUT_S = 4 * 3600.0
#: Environment variable overriding :data:`DEFAULT_TIMEOUT_S` (seconds).
TIMEOUT_ENV = "FAIRSER_DIST_TIMEOUT_S"


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed fit (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    #: Device of the tensors collectives exchange (CUDA for nccl, CPU for gloo).
    device: str = "cpu"

    @property
    def active(self) -> bool:
        """True when more than one process trains."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes files (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op when not distributed)."""
        if self.active:
            torch.distributed.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on rank 0 first, then on the other ranks (e.g. filling a cache)."""
        if self.is_main:
            yield
            self.barrier()
        else:
            self.barrier()
            yield

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """All-reduce ``t`` in place by sum (no-op when not distributed); returns ``t``."""
        if self.active:
            moved = t.to(self.device)
            torch.distributed.all_reduce(moved, op=torch.distributed.ReduceOp.SUM)
            t.copy_(moved)
        return t

    def gather_rows(self, values: np.ndarray, mine: np.ndarray) -> np.ndarray:
        """Every rank's non-negative per-row integer results merged.

        Parameters
        ----------
        values : numpy.ndarray
            (N,) int64 results (>= 0) at this rank's rows.
        mine : numpy.ndarray
            (N,) bool, the rows this rank filled. A row filled by no rank comes out as -1; a
            row filled by several ranks (rows drawn twice) takes the largest value.
        """
        if not self.active:
            return values
        t = torch.from_numpy(np.where(mine, values, -1).astype(np.int64)).to(self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return t.cpu().numpy()


def launched_by_torchrun() -> bool:
    """True when the environment describes a multi-process launch (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def current() -> Dist:
    """This process's :class:`Dist` (an initialised process group, else rank 0 of 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        nccl = torch.distributed.get_backend() == "nccl"
        device = f"cuda:{torch.cuda.current_device()}" if nccl else "cpu"
        return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), device)
    return Dist()


def dist_timeout(*, timeout_s: float | None = None,
                 environ: Mapping[str, str] | None = None) -> datetime.timedelta:
    """The process group's timeout: ``timeout_s``, else ``$FAIRSER_DIST_TIMEOUT_S``, else 4 h.

    Raises
    ------
    ConfigError
        The value is not a positive number of seconds.
    """
    env = os.environ if environ is None else environ
    where, raw = "dist_timeout_s", timeout_s
    if raw is None:
        where, raw = TIMEOUT_ENV, env.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{where}={raw!r}: expected a positive number of seconds, e.g. "
                          f"{where}=14400 (4 hours)")
    return datetime.timedelta(seconds=seconds)


@contextlib.contextmanager
def process_group(device: torch.device, *, timeout_s: float | None = None) -> Iterator[Dist]:
    """Join the process group that ``torchrun`` describes, for the duration of the block.

    Uses nccl for a CUDA device (each rank on ``cuda:LOCAL_RANK``), gloo otherwise. When not
    launched by torchrun, or when a group is already initialised, yields :func:`current`
    unchanged and initialises nothing.

    Parameters
    ----------
    device : torch.device
        The training device (chooses the backend).
    timeout_s : float, optional
        Seconds every collective waits for the other ranks (see :func:`dist_timeout`;
        default ``$FAIRSER_DIST_TIMEOUT_S``, else :data:`DEFAULT_TIMEOUT_S`).
    """
    if not launched_by_torchrun() or torch.distributed.is_initialized():
        yield current()
        return
    timeout = dist_timeout(timeout_s=timeout_s)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend, timeout=timeout)
    try:
        yield current()
    finally:
        torch.distributed.destroy_process_group()


def rank_device(device: torch.device, dist: Dist) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA in a distributed fit."""
    if dist.active and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", str(dist.rank))))
    return device


@functools.cache
def _no_buffer_sync(ddp_class: type) -> dict[str, bool]:
    """DDP keyword that turns off the buffer broadcast of every forward pass: torch >= 2.13
    names it ``forward_sync_buffers`` (and deprecates ``broadcast_buffers``); earlier
    versions (e.g. 2.11) know only ``broadcast_buffers``."""
    params = inspect.signature(ddp_class.__init__).parameters
    key = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return {key: False}


def ddp_wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` in a :class:`~torch.nn.parallel.DistributedDataParallel` wrapper (a process
    group must be initialised).

    The gender head is idle in stage 1 (``find_unused_parameters``); the buffers (input
    statistics) are the same on every rank, so they need no synchronisation per forward pass.
    """
    ddp = torch.nn.parallel.DistributedDataParallel
    ids = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if (device.type == "cuda")
        else None
    )
    return ddp(net, device_ids=ids, find_unused_parameters=True, **_no_buffer_sync(ddp))
