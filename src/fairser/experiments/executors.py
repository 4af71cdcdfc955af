"""Executors: where the independent fits of a grid run (``--executor``).

``local``
    One after the other in this process (the default).
``processes:N``
    N worker processes on this machine (:mod:`concurrent.futures` with the ``spawn`` start
    method); each sets its torch threads to ``cores // N`` (at least 1). On a machine with
    several GPUs the workers are dealt out over them (worker i sees only GPU ``i mod G`` through
    ``CUDA_VISIBLE_DEVICES``), so ``device: auto`` / ``cuda`` fits spread over every GPU.
``ray``, ``ray:N``, ``ray:ADDRESS``
    Ray tasks (the optional extra ``pip install 'fairser[ray]'``): ``ray`` starts a local
    cluster with the machine's cores, ``ray:N`` one with N CPUs, ``ray:ADDRESS`` (e.g.
    ``ray:auto``, ``ray:10.0.0.5:6379``) connects to a running cluster. One CPU per fit, and
    on a cluster with GPUs a share of one GPU (GPUs / CPUs of the cluster, at most 1), which
    Ray pins through ``CUDA_VISIBLE_DEVICES``. The run folder and the feature store must be on
    a filesystem every node sees.

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
import math
import os
import pickle
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Protocol

from fairser.errors import ConfigError, FairserError
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

#: Pool restarts after a worker process died, before the grid stops (finished fits are kept).
MAX_RESTARTS = 3

#: ``on_done(task, outcome)``: called in this process as each fit finishes.
OnDone = Callable[[Any, Any], None]

#: The context unpickled in this worker process, by id (one per grid).
_WORKER_CONTEXT: dict[str, Any] = {}


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


def gpu_share(n_gpus: float, n_cpus: float) -> float:
    """GPUs one fit asks Ray for: the cluster's GPUs per CPU, at most 1, 0 without GPUs.

    Rounded down to 1e-4 (Ray's resolution), so that the shares of all CPUs fit the GPUs.
    """
    if n_gpus <= 0:
        return 0.0
    share = min(1.0, n_gpus / max(n_cpus, 1.0))
    return max(math.floor(share * 1e4) / 1e4, 1e-4)


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


def _set_threads(threads: int) -> None:
    """Torch / BLAS threads of this worker: the environment first (torch reads
    ``OMP_NUM_THREADS`` when first imported), then torch itself if it is imported already."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _load_context(key: str, payload: bytes, threads: int) -> Any:
    """Unpickle the grid context in a worker with ``threads`` torch / BLAS threads."""
    _set_threads(threads)
    ctx = _WORKER_CONTEXT[key] = pickle.loads(payload)
    _set_threads(threads)
    return ctx


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
    _set_threads(threads)
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    _set_threads(threads)


def _call_in_worker(key: str, path: str, fn: Callable[[Any, Any], Any], task: Any) -> Any:
    ctx = _WORKER_CONTEXT.get(key)
    if ctx is None:  # this grid's context, written by the parent (a private file it owns)
        with open(path, "rb") as fh:
            ctx = _WORKER_CONTEXT[key] = pickle.load(fh)
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
            stop_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)

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


def _ray_call(key: str, payload: bytes, fn: Callable[[Any, Any], Any], task: Any,
              threads: int) -> Any:
    ctx = _WORKER_CONTEXT.get(key)
    if ctx is None:
        ctx = _load_context(key, payload, threads)
    return fn(ctx, task)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, an optional extra: pip install "
                          "'fairser[ray]'") from None
    return ray


@dataclass(frozen=True)
class RayExecutor:
    """``ray``, ``ray:N`` or ``ray:ADDRESS``: one Ray task per fit (one CPU each).

    Attributes
    ----------
    address : str or None
        A running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None starts a local
        one.
    num_cpus : int or None
        CPUs of a local cluster (default: the machine's cores).
    max_retries : int
        Retries of a fit whose worker died.
    gpus_per_fit : float or None
        GPUs each fit asks for; None: :func:`gpu_share` of the cluster's resources (0 on a
        cluster without GPUs).
    """

    address: str | None = None
    num_cpus: int | None = None
    max_retries: int = MAX_RESTARTS
    gpus_per_fit: float | None = None

    @property
    def label(self) -> str:
        """``ray``, ``ray:N`` or ``ray:ADDRESS``."""
        if self.address:
            return f"ray:{self.address}"
        return f"ray:{self.num_cpus}" if self.num_cpus else "ray"

    def check(self) -> None:
        """Ray must be installed (the optional extra)."""
        _import_ray()

    def warm(self, n_tasks: int) -> None:
        """Nothing to start: Ray starts (or joins) its cluster in :meth:`run`."""

    def close(self) -> None:
        """Nothing to release."""

    def run(self, fn: Callable[[Any, Any], Any], ctx: Any, tasks: Sequence[Any],
            on_done: OnDone) -> None:
        """Submit every task to Ray and report them as they finish."""
        ray = _import_ray()
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_cpus or available_cores(), include_dashboard=False,
                         log_to_driver=False)
        try:
            key = uuid.uuid4().hex
            payload = ray.put(pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL))
            resources = ray.cluster_resources()
            gpus = (gpu_share(resources.get("GPU", 0.0), resources.get("CPU", 1.0))
                    if self.gpus_per_fit is None else self.gpus_per_fit)
            remote = ray.remote(num_cpus=1, num_gpus=gpus,
                                max_retries=self.max_retries)(_ray_call)
            refs = {remote.remote(key, payload, fn, t, 1): t for t in submission_order(tasks)}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                task = refs.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    for ref in refs:
                        ray.cancel(ref)
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else exc) from None
                except ray.exceptions.RayError as exc:
                    for ref in refs:
                        ray.cancel(ref)
                    raise FairserError(
                        f"executor {self.label}: fit {task.fit_id} lost its worker "
                        f"({type(exc).__name__}) after {self.max_retries} retries; finished "
                        "fits are kept: rerun to resume") from None
                on_done(task, outcome)
        finally:
            if started:
                ray.shutdown()


def parse_executor(text: str | Executor | None) -> Executor:
    """An executor from its command-line form.

    ``local``, ``processes:N`` (N >= 1), ``ray``, ``ray:N`` (a local cluster of N CPUs) or
    ``ray:ADDRESS`` (a running cluster). An :class:`Executor` passes through.

    Raises
    ------
    ConfigError
        Any other text, naming the accepted forms.
    """
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
