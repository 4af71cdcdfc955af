"""``--executor ray``, ``ray:N``, ``ray:ADDRESS``: one Ray task per fit.

Ray is the optional extra ``pip install 'fairser[ray]'``. ``ray`` starts a local cluster with
the machine's cores, ``ray:N`` one with N CPUs, ``ray:ADDRESS`` (e.g. ``ray:auto``,
``ray:10.0.0.5:6379``) connects to a running cluster. One CPU per fit, and on a cluster with
GPUs a share of one GPU (:func:`gpu_share`), which Ray pins through ``CUDA_VISIBLE_DEVICES``.
The run folder and the feature store must be on a filesystem every node sees.
"""

from __future__ import annotations

import math
import pickle
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fairser.errors import ConfigError, FairserError
from fairser.experiments.executor_base import (
    MAX_RESTARTS,
    WORKER_CONTEXT,
    OnDone,
    available_cores,
    set_threads,
    submission_order,
)

__all__ = ["RayExecutor", "gpu_share"]


def gpu_share(n_gpus: float, n_cpus: float) -> float:
    """GPUs one fit asks Ray for: the cluster's GPUs per CPU, at most 1, 0 without GPUs.

    Rounded down to 1e-4 (Ray's resolution), so that the shares of all CPUs fit the GPUs.
    """
    if n_gpus <= 0:
        return 0.0
    share = min(1.0, n_gpus / max(n_cpus, 1.0))
    return max(math.floor(share * 1e4) / 1e4, 1e-4)


def _load_context(key: str, payload: bytes, threads: int) -> Any:
    """Unpickle the grid context in a worker with ``threads`` torch / BLAS threads."""
    set_threads(threads)
    ctx = WORKER_CONTEXT[key] = pickle.loads(payload)
    set_threads(threads)
    return ctx


def _ray_call(key: str, payload: bytes, fn: Callable[[Any, Any], Any], task: Any,
              threads: int) -> Any:
    ctx = WORKER_CONTEXT.get(key)
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
