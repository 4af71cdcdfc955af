"""Executors: where the independent fits of a grid run (``--executor``).

``local``
    One after the other in this process (the default).
``processes:N``
    N worker processes on this machine (:mod:`concurrent.futures` with the ``spawn`` start
    method); each sets its torch threads to ``cores // N`` (at least 1). On a machine with
    several GPUs the workers are dealt out over them (worker i sees only GPU ``i mod G`` through
    ``CUDA_VISIBLE_DEVICES``), so ``device: auto`` / ``cuda`` fits spread over every GPU.
``ray``, ``ray:N``, ``ray:ADDRESS``
    Ray tasks (the optional extra ``pip install 'fairser[ray]'``), in
    :mod:`fairser.experiments.ray_executor`.

What every executor shares (the protocol, the start order, worker threads) is in
:mod:`fairser.experiments.executor_base`.

An executor only decides where ``fn(ctx, task)`` runs; every fit writes its own record
atomically, so the results do not depend on the executor (results.csv is byte-identical apart
from the timing column). A worker process that dies (killed, out of memory) loses only its
current fit: ``processes`` restarts the pool and runs the unfinished fits again (up to
:data:`MAX_RESTARTS` times), Ray retries the task, and a rerun of the command resumes anyway.

``processes`` workers never outlive the grid: each asks the kernel to end it when its parent
dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and watches its parent pid from a thread (every OS),
so a parent killed with SIGKILL takes its workers with it
(:mod:`fairser.experiments.worker_lifetime`). SIGTERM (or Ctrl-C) on the parent terminates
the workers and raises :class:`GridTerminated` (one line, exit code 143): the fits being
trained are lost, the finished ones keep their records, and a rerun resumes.
"""

from __future__ import annotations

import importlib
import os
import pickle
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any

from fairser.errors import ConfigError, FairserError
from fairser.experiments.executor_base import (
    MAX_RESTARTS,
    WORKER_CONTEXT,
    Executor,
    OnDone,
    available_cores,
    set_threads,
    submission_order,
)
from fairser.experiments.ray_executor import RayExecutor, gpu_share
from fairser.experiments.worker_lifetime import (
    WATCH_INTERVAL_S,
    GridTerminated,
    die_with_parent,
    sigterm_stops_grid,
    stop_workers,
)

__all__ = ["MAX_RESTARTS", "WATCH_INTERVAL_S", "Executor", "GridTerminated", "LocalExecutor",
           "ProcessExecutor", "RayExecutor", "available_cores", "gpu_share", "parse_executor",
           "submission_order", "visible_gpus"]


def visible_gpus() -> tuple[str, ...]:
    """The CUDA devices this process may use, as ``CUDA_VISIBLE_DEVICES`` entries.

    ``CUDA_VISIBLE_DEVICES`` when set (empty or ``-1``: none), else ``0 .. n-1`` for the
    devices torch counts (none when torch has no CUDA).
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        return () if not ids or ids[0] == "-1" else tuple(ids)
    try:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA stack means no GPU for the workers
        n = 0
    return tuple(str(i) for i in range(n))


@dataclass(frozen=True)
class LocalExecutor:
    """Every fit in this process, in plan order."""

    label: str = "local"

    def check(self) -> None:
        """Always available."""

    def warm(self, n_tasks: int) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to release."""

    def run(self, fn: Callable[[Any, Any], Any], ctx: Any, tasks: Sequence[Any],
            on_done: OnDone) -> None:
        """Run the tasks one after the other."""
        for task in tasks:
            on_done(task, fn(ctx, task))


#: Imported by every ``processes`` worker as it starts, while the parent still loads the data.
WARM_IMPORTS = ("fairser.experiments.fitting", "fairser.training", "fairser.features",
                "fairser.metrics", "fairser.levers")


def _init_worker(threads: int, parent: int | None = None, gpus: tuple[str, ...] = (),
                 counter: Any = None) -> None:
    """Process-pool initializer: tie the worker to its parent, pick its GPU, import the fit code.

    With ``gpus``, the i-th worker started (``counter``, shared by the pool) sees only
    ``gpus[i mod len(gpus)]``; set before anything imports torch, i.e. before CUDA can start.
    The grid context is not known yet (the pool may start before the data is loaded): each
    worker reads it from a file on its first fit (:func:`_call_in_worker`).
    """
    if parent is not None:
        die_with_parent(parent)
    if gpus and counter is not None:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    set_threads(threads)
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    set_threads(threads)


def _call_in_worker(key: str, path: str, fn: Callable[[Any, Any], Any], task: Any) -> Any:
    ctx = WORKER_CONTEXT.get(key)
    if ctx is None:  # this grid's context, written by the parent (a private file it owns)
        with open(path, "rb") as fh:
            ctx = WORKER_CONTEXT[key] = pickle.load(fh)
    return fn(ctx, task)


@dataclass(frozen=True)
class ProcessExecutor:
    """``processes:N``: N spawned worker processes on this machine.

    Attributes
    ----------
    workers : int
        Worker processes.
    threads : int
        Torch threads per worker (default ``max(1, cores // workers)``).
    gpus : tuple of str or None
        GPUs to deal the workers out over (``CUDA_VISIBLE_DEVICES`` entries); None: those of
        :func:`visible_gpus`; ``()``: leave the workers' environment as it is.
    """

    workers: int
    threads: int = 0
    gpus: tuple[str, ...] | None = None
    _pool: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        """``processes:N``."""
        return f"processes:{self.workers}"

    def check(self) -> None:
        """Always available."""

    def warm(self, n_tasks: int) -> None:
        """Start the workers for ``n_tasks`` fits now (at most ``workers``): they import the fit
        code while the caller loads the data.

        :meth:`run` uses the started pool; :meth:`close` ends it if ``run`` never comes.
        """
        n = min(self.workers, n_tasks)
        if "pool" not in self._pool and n > 0:
            pool = self._pool["pool"] = self._new_pool(n)
            for _ in range(n):  # a pool starts a process per submit, as needed
                pool.submit(os.getpid)

    def close(self) -> None:
        """End a pool started by :meth:`warm` that no :meth:`run` used."""
        pool = self._pool.pop("pool", None)
        if pool is not None:
            stop_workers(pool)  # also shuts the pool down

    def _new_pool(self, n: int) -> ProcessPoolExecutor:
        threads = self.threads or max(1, available_cores() // self.workers)
        gpus = visible_gpus() if self.gpus is None else tuple(self.gpus)
        counter = get_context("spawn").Value("i", 0)
        return ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"),
                                   initializer=_init_worker,
                                   initargs=(threads, os.getpid(), gpus, counter))

    def run(self, fn: Callable[[Any, Any], Any], ctx: Any, tasks: Sequence[Any],
            on_done: OnDone) -> None:
        """Run the tasks in the pool; restart it when a worker dies."""
        key = uuid.uuid4().hex
        fd, path = tempfile.mkstemp(prefix="fairser-grid-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as fh:  # mode 0600: only this user's workers read it
                pickle.dump(ctx, fh, protocol=pickle.HIGHEST_PROTOCOL)
            pending = submission_order(tasks)
            restarts = 0
            with sigterm_stops_grid():
                while pending:
                    pool = self._pool.pop("pool", None) or self._new_pool(
                        min(self.workers, len(pending)))
                    broken = self._run_pool(fn, pool, key=key, path=path, tasks=pending,
                                            on_done=on_done)
                    if not broken:
                        continue
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        raise FairserError(
                            f"executor {self.label}: a worker process died {restarts} times "
                            f"({len(pending)} fit(s) unfinished; killed or out of memory?); "
                            "finished fits are kept: rerun to resume, with fewer workers if "
                            "memory is short")
        finally:
            self.close()
            os.unlink(path)

    def _run_pool(self, fn: Callable[[Any, Any], Any], pool: ProcessPoolExecutor, *, key: str,
                  path: str, tasks: list[Any], on_done: OnDone) -> bool:
        """Run ``tasks`` in ``pool`` (finished ones removed from the list); True if a worker
        died.

        Interrupted (SIGTERM, Ctrl-C), the workers are terminated before the exception goes
        on; any other exception of a fit lets the running fits finish first.
        """
        broken = False
        try:
            futures = {pool.submit(_call_in_worker, key, path, fn, t): t for t in tasks}
            remaining = set(futures)
            while remaining and not broken:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: futures[f].index):
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    task = futures[fut]
                    tasks.remove(task)
                    on_done(task, outcome)
        except (KeyboardInterrupt, GridTerminated):
            broken = True  # do not wait for the fits being trained
            stop_workers(pool)
            raise
        finally:
            # every fit is done (or the pool is broken): the workers exit on their own
            pool.shutdown(wait=False, cancel_futures=True)
        return broken


def parse_executor(text: str | Executor | None, *,
                   gpus_per_fit: float | None = None) -> Executor:
    """An executor from its command-line form.

    Parameters
    ----------
    text : str, Executor or None
        ``local``, ``processes:N`` (N >= 1), ``ray``, ``ray:N`` (a local cluster of N CPUs)
        or ``ray:ADDRESS`` (a running cluster). An :class:`Executor` passes through; None is
        ``local``.
    gpus_per_fit : float or None
        GPUs each Ray fit asks for (``--gpus-per-fit``; e.g. 0.25 puts four fits on a GPU);
        None: the cluster's GPUs-per-CPU share (:func:`gpu_share`). Ray executors only.

    Raises
    ------
    ConfigError
        Any other text, naming the accepted forms; ``gpus_per_fit`` negative or given with
        an executor other than Ray.
    """
    if gpus_per_fit is not None:
        if gpus_per_fit < 0:
            raise ConfigError(f"--gpus-per-fit {gpus_per_fit}: must be >= 0 (0: fits on CPUs)")
        found = parse_executor(text)
        if not isinstance(found, RayExecutor):
            raise ConfigError(f"--gpus-per-fit applies to --executor ray only (got "
                              f"{getattr(found, 'label', text)!r}); processes:N deals its "
                              "workers over the visible GPUs itself")
        return replace(found, gpus_per_fit=float(gpus_per_fit))
    if text is None:
        return LocalExecutor()
    if not isinstance(text, str):
        return text
    kind, _, arg = text.strip().partition(":")
    forms = "local, processes:N, ray, ray:N or ray:ADDRESS"
    if kind == "local" and not arg:
        return LocalExecutor()
    if kind == "processes":
        if not arg.isdigit() or int(arg) < 1:
            raise ConfigError(f"--executor {text!r}: processes needs a worker count, e.g. "
                              f"processes:2; use one of {forms}")
        return ProcessExecutor(workers=int(arg))
    if kind == "ray":
        if not arg:
            return RayExecutor()
        if arg.isdigit():
            if int(arg) < 1:
                raise ConfigError(f"--executor {text!r}: ray:N needs N >= 1")
            return RayExecutor(num_cpus=int(arg))
        return RayExecutor(address=arg)
    raise ConfigError(f"--executor {text!r}: unknown executor; use one of {forms}")
