"""Do the fits that run at once fit in this machine's memory? (``processes:N``, local Ray)

``--executor processes:N`` trains N fits at the same time, each in its own worker process, so
the grid's peak memory is that of the N largest fits it can run together, not one fit's
(:mod:`fairser.experiments.estimate` gives one fit's peak: a network fit is streamed and flat
in the rows; a linear-baseline fit holds its rows in memory, about 6.7 GB at MSP-Podcast size).
``--dry-run`` prints that sum next to the memory this machine has available
(:func:`available_memory`); ``fairser run`` with ``processes:N`` (N > 1) logs one warning
before the fits start when the sum exceeds it, naming the most workers that fit. It only
warns: the figures are estimates, and a worker killed for memory loses only its current fit
(the pool restarts; a rerun resumes). Results and fit ids never depend on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairser.experiments.estimate import BaselineMemory, FitMemory, fit_estimates, human_bytes
from fairser.experiments.executor_base import Executor, available_cores
from fairser.experiments.executors import ProcessExecutor, RayExecutor
from fairser.experiments.planning import training_options

__all__ = ["ConcurrentMemory", "available_memory", "concurrent_memory", "fits_at_once",
           "memory_warning"]


def _cgroup_folders(root: Path) -> list[Path]:
    """Memory-cgroup folders to read: this process's own (v2, v1), then the mount's roots."""
    own = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if not controllers:  # v2: "0::/PATH"
                own.append(root / path.lstrip("/"))
            elif "memory" in controllers.split(","):  # v1: "N:memory:/PATH"
                own.append(root / "memory" / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    return [*own, root, root / "memory"]


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes left under this process's cgroup memory limit, reclaimable page cache not
    counted as used; None without a limit (or a cgroup file system)."""
    for folder in _cgroup_folders(root):
        for limit, usage, cache in (("memory.max", "memory.current", "inactive_file"),
                                    ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                     "total_inactive_file")):
            try:
                cap = int((folder / limit).read_text().strip())
                used = int((folder / usage).read_text().strip())
                stat = (folder / "memory.stat").read_text().splitlines()
            except (OSError, ValueError):  # no such file; "max": no limit
                continue
            if cap < 1 << 60:  # v1 writes "no limit" as a huge number
                cached = next((int(line.split()[1]) for line in stat
                               if line.startswith(cache + " ")), 0)
                return max(0, cap - used + cached)
    return None


def available_memory() -> int | None:
    """Bytes of memory new work can use on this machine now; None where unreadable.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (free memory plus the page cache the kernel
    can reclaim), capped by the room left under this process's cgroup limit (a container, a
    SLURM job); elsewhere ``os.sysconf`` free pages x page size (free memory only, so an
    underestimate). Tests monkeypatch this function
    (``fairser.experiments.memory_guard.available_memory``).
    """
    found: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().split("\n"):
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        found = None
    if found is None:
        try:
            found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # Windows, macOS: no such name
            return None
    room = _cgroup_room()
    return found if room is None else min(found, room)


def fits_at_once(executor: Executor) -> int | None:
    """Fits ``executor`` runs at the same time on this machine: N of ``processes:N``, the CPUs
    of a local Ray cluster (one per fit); None for ``local`` and a remote Ray cluster."""
    if isinstance(executor, ProcessExecutor):
        return executor.workers
    if isinstance(executor, RayExecutor) and not executor.address:
        return executor.num_cpus or available_cores()
    return None


@dataclass(frozen=True)
class ConcurrentMemory:
    """Peak memory of the fits an executor runs at once, against the memory available.

    Attributes
    ----------
    label : str
        The executor (``processes:4``).
    network, baseline : int
        Peak bytes of the largest network fit and the largest linear-baseline fit (0 without).
    n_network, n_baselines : int
        How many of each the largest fits that run together hold (their sum is the fits at
        once, capped by the fits of the grid).
    available : int or None
        Bytes available on this machine (None: unknown).
    """

    label: str
    network: int
    baseline: int
    n_network: int
    n_baselines: int
    available: int | None

    @property
    def sizes(self) -> list[int]:
        """Per-fit peaks of the fits at once, largest first."""
        fits = [self.baseline] * self.n_baselines + [self.network] * self.n_network
        return sorted(fits, reverse=True)

    @property
    def total(self) -> int:
        """Their sum: the estimated peak of the fits at once."""
        return sum(self.sizes)

    @property
    def over(self) -> bool:
        """Whether the estimate exceeds the available memory."""
        return self.available is not None and self.total > self.available

    def most_that_fit(self) -> int:
        """The most fits at once whose largest-first sum stays within the available memory."""
        used = count = 0
        for size in self.sizes:
            used += size
            if self.available is not None and used > self.available:
                break
            count += 1
        return count

    def fix(self) -> str:
        """The ``--executor`` that fits: ``processes:K`` (``ray:K``) with the largest K, else
        ``local``."""
        k = self.most_that_fit()
        if k >= 2:
            return f"{'ray' if self.label.startswith('ray') else 'processes'}:{k}"
        return "local" + (" (even one fit is estimated above it)" if k == 0 else "")

    def _mix(self) -> str:
        parts = [(self.n_baselines, "linear-baseline", self.baseline),
                 (self.n_network, "network", self.network)]
        return " + ".join(f"{n} {kind} fit{'s' if n > 1 else ''} of {human_bytes(size)}"
                          for n, kind, size in parts if n)

    def line(self) -> str:
        """The ``--dry-run`` line."""
        n = self.n_network + self.n_baselines
        out = (f"peak memory of {n} fits at once ({self.label}): about "
               f"{human_bytes(self.total)} ({self._mix()}) on top of the worker processes; ")
        if self.available is None:
            return out + "available memory unknown on this machine"
        out += f"{human_bytes(self.available)} available on this machine"
        return out + (f": too much, use --executor {self.fix()}" if self.over else "")

    def warning(self) -> str:
        """The run's warning (one line)."""
        n = self.n_network + self.n_baselines
        return (f"--executor {self.label} runs {n} fits at once, estimated at about "
                f"{human_bytes(self.total)} of memory at peak ({self._mix()}), more than the "
                f"{human_bytes(self.available or 0)} available on this machine; workers may "
                f"be killed for memory: use --executor {self.fix()} (running as asked)")


def concurrent_memory(*, executor: Executor, network: FitMemory | None,
                      baseline: BaselineMemory | None, n_network: int, n_baselines: int,
                      read: Callable[[], int | None] | None = None) -> ConcurrentMemory | None:
    """The fits ``executor`` runs at once and their peak memory; None for ``local``, a remote
    Ray cluster, a grid without fits or without estimates.

    Parameters
    ----------
    executor : Executor
        Where the fits run.
    network, baseline : FitMemory or None, BaselineMemory or None
        The largest network fit and linear-baseline fit of the grid.
    n_network, n_baselines : int
        Network and linear-baseline fits to run.
    read : callable, optional
        Reads the available memory (default :func:`available_memory`).
    """
    n = fits_at_once(executor)
    if n is None or network is None or n_network + n_baselines == 0:
        return None
    net, lin = network.total, 0 if baseline is None else baseline.total
    n_lin = n_baselines if baseline is not None else 0
    n = min(n, n_network + n_lin)
    first = min(n, n_lin) if lin >= net else max(0, n - n_network)
    available = (read or available_memory)()
    return ConcurrentMemory(label=executor.label, network=net, baseline=lin,
                            n_network=n - first, n_baselines=first, available=available)


def memory_warning(cfg: Any, backend: Any, data: Any, tasks: Sequence[Any], *,
                   executor: Executor) -> str | None:
    """The run's warning when ``processes:N`` (N > 1) would run more fits at once than the
    available memory holds; None otherwise (and for every other executor).

    Cheap: the estimates come from the manifests of ``data`` (a :class:`GridData`), as in
    ``--dry-run`` (:func:`fairser.experiments.estimate.fit_estimates`).

    Parameters
    ----------
    cfg : ExperimentConfig
        The experiment.
    backend : Backend
        Its ``describe_frontend`` (None: no estimate, no warning) and ``train_config``.
    data : GridData
        The grid's rows.
    tasks : sequence of FitTask
        The fits still to run.
    executor : Executor
        Where they run.
    """
    if (not isinstance(executor, ProcessExecutor) or executor.workers < 2 or not tasks
            or backend.describe_frontend is None):
        return None
    n_lin = sum(bool(t.spec.is_baseline) for t in tasks)
    shape = backend.describe_frontend(cfg.features.frontend, cfg.features.layers)
    network, baseline = fit_estimates(
        source=data.source, adapt=data.adapt,
        eval_rows={label: len(df) for label, df in data.evals.items()}, shape=shape,
        options=backend.train_config(training_options(cfg, ())),
        n_classes=len(cfg.emotions) if cfg.task == "multiclass" else 1,
        norm=cfg.linear_baseline_norm, baselines=n_lin > 0)
    found = concurrent_memory(executor=executor, network=network, baseline=baseline,
                              n_network=len(tasks) - n_lin, n_baselines=n_lin)
    return found.warning() if found is not None and found.over else None
