"""The memory guard of processes:N: the fits at once against the memory available."""

from __future__ import annotations

import dataclasses
import io
import re

from grid_fakes import FakeLayers
from rich.console import Console

from fairser.experiments import memory_guard, parse_config, run_experiment
from fairser.experiments.dryrun import dry_run
from fairser.experiments.estimate import BaselineMemory, FitMemory, FrontendShape, human_bytes
from fairser.experiments.executors import (
    LocalExecutor,
    ProcessExecutor,
    RayExecutor,
    parse_executor,
)
from fairser.experiments.memory_guard import (
    available_memory,
    concurrent_memory,
    fits_at_once,
)

LOGMEL = FrontendShape(name="logmel", frame_rate=100.0, dim=80, n_layers=1)


def _describe(name, layers):
    """A frontend shape for the fake backend (which has none), so the estimates exist."""
    return LOGMEL


def _backend():
    return dataclasses.replace(FakeLayers().backend(), describe_frontend=_describe)


@dataclasses.dataclass(frozen=True)
class _InlineProcesses(ProcessExecutor):
    """``processes:N`` as the guard sees it, its fits run in this process (no workers)."""

    def warm(self, n_tasks: int) -> None:
        """Nothing to start."""

    def run(self, fn, ctx, tasks, on_done) -> None:
        """One after the other, here."""
        LocalExecutor().run(fn, ctx, tasks, on_done)


def _network(total: int) -> FitMemory:
    return FitMemory(train=total, evaluate=0, params=0, overhead=0, frames=1, rows=1)


def _baseline(total: int) -> BaselineMemory:
    return BaselineMemory(fit=total, evaluate=0, rows=1, width=1)


def test_available_memory_is_a_positive_int():
    found = available_memory()
    assert isinstance(found, int) and found > 0


def test_cgroup_limit_caps_the_room(tmp_path):
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("600000\n")
    (tmp_path / "memory.stat").write_text("anon 500000\ninactive_file 100000\n")
    assert memory_guard._cgroup_room(tmp_path) == 500_000  # the page cache is reclaimable
    (tmp_path / "memory.max").write_text("max\n")
    assert memory_guard._cgroup_room(tmp_path) is None


def test_fits_at_once_by_executor():
    assert fits_at_once(parse_executor("processes:3")) == 3
    assert fits_at_once(RayExecutor(num_cpus=5)) == 5
    assert fits_at_once(parse_executor("local")) is None
    assert fits_at_once(RayExecutor(address="10.0.0.1:6379")) is None  # other machines


def test_largest_fits_at_once_and_the_most_that_fit():
    gb = 10**9
    found = concurrent_memory(executor=ProcessExecutor(workers=4), network=_network(gb // 5),
                              baseline=_baseline(6 * gb), n_network=8, n_baselines=2,
                              read=lambda: 13 * gb)
    # the 4 largest fits of the grid: both baselines and 2 network fits
    assert (found.n_baselines, found.n_network) == (2, 2) and found.total == 12_400_000_000
    assert not found.over and found.most_that_fit() == 4
    tight = dataclasses.replace(found, available=12_300_000_000)
    assert tight.over and tight.most_that_fit() == 3 and tight.fix() == "processes:3"
    assert dataclasses.replace(found, available=7 * gb).fix() == "local"
    assert dataclasses.replace(found, available=gb).fix().startswith("local (even one fit")
    # fewer fits than workers: only those run at once
    few = concurrent_memory(executor=ProcessExecutor(workers=8), network=_network(gb),
                            baseline=None, n_network=3, n_baselines=0, read=lambda: None)
    assert (few.n_network, few.total, few.over) == (3, 3 * gb, False)
    assert "available memory unknown" in few.line()
    assert concurrent_memory(executor=LocalExecutor(), network=_network(gb), baseline=None,
                             n_network=3, n_baselines=0) is None


def test_dry_run_prints_the_fits_at_once(small_settings, monkeypatch):
    cfg = parse_config(small_settings)
    monkeypatch.setattr(memory_guard, "available_memory", lambda: 10**12)
    found = dry_run(cfg, _backend(), check_roots=False, executor="processes:2")
    line = found.lines()[-1]
    per_fit = found.memory.total  # the network fit is the larger here
    assert line.startswith("peak memory of 2 fits at once (processes:2): about "
                           f"{human_bytes(2 * per_fit)} (2 network fits of "
                           f"{human_bytes(per_fit)})")
    assert line.endswith("1.0 TB available on this machine")
    monkeypatch.setattr(memory_guard, "available_memory", lambda: per_fit + 1)
    tight = dry_run(cfg, _backend(), check_roots=False, executor="processes:2")
    assert tight.lines()[-1].endswith(": too much, use --executor local")
    alone = dry_run(cfg, _backend(), check_roots=False, executor="local")
    assert alone.concurrent is None and not alone.lines()[-1].startswith("peak memory of")


def _run(cfg, tmp_path, name, executor):
    log = io.StringIO()
    result = run_experiment(cfg, out_dir=tmp_path / name, progress=False, backend=_backend(),
                            console=Console(file=log, width=400), executor=executor)
    return result, log.getvalue()


def test_run_warns_once_with_the_workers_that_fit(small_settings, tmp_path, monkeypatch):
    cfg = parse_config(small_settings)
    per_fit = dry_run(cfg, _backend(), check_roots=False).memory.total
    monkeypatch.setattr(memory_guard, "available_memory", lambda: 10**12)
    roomy, log = _run(cfg, tmp_path, "roomy", _InlineProcesses(workers=4))
    assert "warning" not in log
    monkeypatch.setattr(memory_guard, "available_memory", lambda: int(2.5 * per_fit))
    tight, log = _run(cfg, tmp_path, "tight", _InlineProcesses(workers=4))
    warnings = [line for line in log.splitlines() if "warning" in line]
    assert len(warnings) == 1, log
    assert re.search(r"warning: --executor processes:4 runs 4 fits at once, estimated at "
                     rf"about {human_bytes(4 * per_fit)} of memory at peak \(4 network fits of "
                     rf"{human_bytes(per_fit)}\), more than the "
                     rf"{human_bytes(int(2.5 * per_fit))} available on this machine; .*use "
                     r"--executor processes:2 \(running as asked\)", warnings[0]), warnings[0]
    # it only warns: every fit ran, under the same ids and with the same results
    assert tight.n_runs == roomy.n_runs == 10 and not tight.failed
    cols = ["run_id", "corpus", "uar", "dsp"]
    assert tight.results[cols].equals(roomy.results[cols])
    # one worker (as local): nothing to warn about
    _, log = _run(cfg, tmp_path, "one", _InlineProcesses(workers=1))
    assert "warning" not in log


def test_run_skips_the_guard_without_estimates(small_settings, tmp_path, monkeypatch):
    """A backend that cannot describe its frontend (no estimate): no warning, no error."""
    monkeypatch.setattr(memory_guard, "available_memory", lambda: 1)
    log = io.StringIO()
    run_experiment(parse_config(small_settings), out_dir=tmp_path / "run", progress=False,
                   backend=FakeLayers().backend(), console=Console(file=log, width=400),
                   executor=_InlineProcesses(workers=2))
    assert "warning" not in log.getvalue()
