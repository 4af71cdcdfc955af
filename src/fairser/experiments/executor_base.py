"""What every executor shares: the protocol, the order fits start in, and worker set-up.

:mod:`fairser.experiments.executors` holds ``local`` and ``processes:N`` (and parses
``--executor``), :mod:`fairser.experiments.ray_executor` holds ``ray``; both build on this.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["MAX_RESTARTS", "WORKER_CONTEXT", "Executor", "OnDone", "available_cores",
           "set_threads", "submission_order"]

#: Pool restarts after a worker process died, before the grid stops (finished fits are kept).
MAX_RESTARTS = 3

#: ``on_done(task, outcome)``: called in this process as each fit finishes.
OnDone = Callable[[Any, Any], None]

#: The context unpickled in this worker process, by id (one per grid).
WORKER_CONTEXT: dict[str, Any] = {}


class Executor(Protocol):
    """Runs ``fn(ctx, task)`` for every task and reports each outcome as it finishes."""

    label: str

    def check(self) -> None:
        """Raise ``ConfigError`` when this executor cannot run here (e.g. Ray missing)."""
        ...

    def warm(self, n_tasks: int) -> None:
        """Start the workers for ``n_tasks`` fits early, before the data exists (a no-op where
        nothing starts)."""
        ...

    def close(self) -> None:
        """Release what :meth:`warm` started if :meth:`run` never ran (idempotent)."""
        ...

    def run(self, fn: Callable[[Any, Any], Any], ctx: Any, tasks: Sequence[Any],
            on_done: OnDone) -> None:
        """Run every task; an exception of a task stops the grid and is raised here."""
        ...


def submission_order(tasks: Sequence[Any]) -> list[Any]:
    """The order in which parallel executors start ``tasks``: longest expected first.

    Tasks with a ``cost`` attribute (:class:`fairser.experiments.planning.FitTask`) are sorted
    by it, descending, ties in plan order: the short fits then fill the end, where one worker
    would otherwise wait for the other's last long fit. ``local`` keeps the plan order.
    """
    return sorted(tasks, key=lambda t: -float(getattr(t, "cost", 1.0)))


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int) -> None:
    """Torch / BLAS threads of this worker: the environment first (torch reads
    ``OMP_NUM_THREADS`` when first imported), then torch itself if it is imported already."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
