"""Executors: local, processes:N and ray give the same results.csv; killed workers are re-run."""

from __future__ import annotations

import io
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pytest
from grid_fakes import EnvTask, FakeLayers, visible_devices_fit
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments import parse_config, run_experiment
from fairser.experiments.executors import (
    LocalExecutor,
    ProcessExecutor,
    RayExecutor,
    gpu_share,
    parse_executor,
    submission_order,
    visible_gpus,
)
from fairser.experiments.planning import plan_tasks

HERE = Path(__file__).resolve().parent


def _csv_without_timing(path: Path) -> str:
    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["fit_s"])
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def _grid(settings, layers, out: Path, executor) -> str:
    run_experiment(parse_config(settings), out_dir=out, progress=False,
                   console=Console(quiet=True), backend=layers.backend(real_metrics=True),
                   executor=executor)
    return _csv_without_timing(out / "results.csv")


#: 2 methods x 2 emotions x 1 seed + 2 linear baselines = 6 fits.
SETTINGS = {"name": "exec", "source": "fake-source:/x", "targets": ["fake-target:/y"],
            "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry", "happy"],
            "methods": ["source-only", "pa-cfa"], "seeds": [0], "bootstrap": {"n_resamples": 20}}


@pytest.fixture(scope="module")
def local_csv(tmp_path_factory) -> str:
    """results.csv of the grid run by the local executor (the reference)."""
    return _grid(SETTINGS, FakeLayers(), tmp_path_factory.mktemp("local") / "run", "local")


def test_parse_executor_forms_and_errors():
    assert parse_executor(None) == LocalExecutor() == parse_executor("local")
    assert parse_executor("processes:3") == ProcessExecutor(workers=3)
    assert parse_executor("ray") == RayExecutor()
    assert parse_executor("ray:4") == RayExecutor(num_cpus=4)
    assert parse_executor("ray:10.0.0.5:6379") == RayExecutor(address="10.0.0.5:6379")
    assert parse_executor("ray:auto").label == "ray:auto"
    for bad in ("processes", "processes:0", "processes:x", "threads:2", "local:2", "ray:0"):
        with pytest.raises(ConfigError, match="--executor") as info:
            parse_executor(bad)
        assert "\n" not in str(info.value)


def test_gpus_per_fit_sets_the_ray_share_and_is_refused_elsewhere():
    assert parse_executor("ray:2", gpus_per_fit=0.25) == RayExecutor(num_cpus=2,
                                                                    gpus_per_fit=0.25)
    assert parse_executor("ray", gpus_per_fit=0).gpus_per_fit == 0.0
    assert parse_executor("ray").gpus_per_fit is None
    for text in ("local", "processes:2", None):
        with pytest.raises(ConfigError, match="--gpus-per-fit applies to --executor ray"):
            parse_executor(text, gpus_per_fit=0.5)
    with pytest.raises(ConfigError, match="must be >= 0"):
        parse_executor("ray", gpus_per_fit=-1)


@pytest.mark.slow
def test_parallel_executors_start_the_longest_fits_first():
    tasks = plan_tasks(parse_config(SETTINGS))
    by_plan = [(t.spec.method, t.spec.emotion) for t in tasks]
    assert by_plan[:2] == [("linear-baseline", "angry"), ("linear-baseline", "happy")]
    cost = {t.spec.method: t.cost for t in tasks}
    assert cost["pa-cfa"] > cost["source-only"] > cost["linear-baseline"]
    order = [(t.spec.method, t.spec.emotion) for t in submission_order(tasks)]
    # two-stage fits first (plan order among equals), baselines last; plan order itself kept
    assert order == [("pa-cfa", "angry"), ("pa-cfa", "happy"), ("source-only", "angry"),
                     ("source-only", "happy"), ("linear-baseline", "angry"),
                     ("linear-baseline", "happy")]
    assert [(t.spec.method, t.spec.emotion) for t in tasks] == by_plan


def test_processes_give_byte_identical_results(local_csv, tmp_path):
    start = time.perf_counter()
    assert _grid(SETTINGS, FakeLayers(), tmp_path / "procs", "processes:2") == local_csv
    assert time.perf_counter() - start < 120
    assert len(list((tmp_path / "procs" / "records").glob("*.json"))) == 1 + 6


@pytest.mark.slow
def test_killed_worker_is_rerun(local_csv, tmp_path):
    marker = tmp_path / "died"
    layers = FakeLayers(die_marker=marker)  # the first fit kills its worker process
    assert _grid(SETTINGS, layers, tmp_path / "procs", "processes:2") == local_csv
    assert marker.is_file() and int(marker.read_text()) != os.getpid()


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'fairser\[ray\]'"):
        _grid(SETTINGS, FakeLayers(), tmp_path / "ray", "ray:2")


@pytest.mark.slow
def test_ray_local_cluster_gives_byte_identical_results(local_csv, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    # Ray workers import the fakes by name, as the spawned processes do
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH",
                                                                                 "")]))
    start = time.perf_counter()
    got = _grid(SETTINGS, FakeLayers(), tmp_path / "ray", "ray:2")
    elapsed = time.perf_counter() - start
    assert got == local_csv
    assert elapsed < 60, f"ray grid took {elapsed:.0f} s"


def test_visible_gpus_reads_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert visible_gpus() == ("2", "3")
    for none in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", none)
        assert visible_gpus() == ()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert visible_gpus() == tuple(str(i) for i in range(n))


def test_gpu_share_fits_every_cpu_of_the_cluster():
    assert gpu_share(0, 16) == 0.0
    assert gpu_share(1, 16) == 0.0625
    assert gpu_share(4, 2) == 1.0  # one fit never asks for more than one GPU
    assert gpu_share(1, 3) == 0.3333 and 3 * gpu_share(1, 3) <= 1


def test_worker_initializer_deals_gpus_in_start_order(monkeypatch):
    import torch

    from fairser.experiments.executors import _init_worker

    for var in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "x")  # so that teardown restores the value from before
        monkeypatch.delenv(var)
    threads = torch.get_num_threads()
    counter = get_context("spawn").Value("i", 0)
    try:
        got = []
        for _ in range(3):
            _init_worker(1, None, ("5", "7"), counter)
            got.append(os.environ["CUDA_VISIBLE_DEVICES"])
        assert got == ["5", "7", "5"]
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        _init_worker(1, None, (), counter)  # no GPUs: the environment is left alone
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
    finally:
        torch.set_num_threads(threads)


def test_process_workers_each_see_one_gpu_of_their_own(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    tasks = [EnvTask(index=i, fit_id=f"t{i}") for i in range(6)]
    seen: dict[int, tuple[int, str]] = {}
    ProcessExecutor(workers=2, gpus=("5", "7")).run(
        visible_devices_fit, None, tasks, lambda t, out: seen.__setitem__(t.index, out))
    assert sorted(seen) == list(range(6))
    per_worker = {}
    for pid, gpu in seen.values():
        assert per_worker.setdefault(pid, gpu) == gpu  # one GPU per worker, for every fit
    assert set(per_worker.values()) <= {"5", "7"}
    assert len(set(per_worker.values())) == len(per_worker)  # no two workers share one
    # without GPUs the workers' environment is left alone
    seen.clear()
    ProcessExecutor(workers=2, gpus=()).run(
        visible_devices_fit, None, tasks[:2], lambda t, out: seen.__setitem__(t.index, out))
    assert {gpu for _, gpu in seen.values()} == {None}


@pytest.mark.slow
def test_ray_fits_ask_for_a_gpu_share_and_see_their_gpu(monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH",
                                                                                 "")]))
    # a local cluster that declares two (fake) GPUs: Ray assigns them and pins each task
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seen: dict[int, tuple[int, str]] = {}
        tasks = [EnvTask(index=i, fit_id=f"t{i}") for i in range(4)]
        RayExecutor().run(visible_devices_fit, None, tasks,
                          lambda t, out: seen.__setitem__(t.index, out))
    finally:
        ray.shutdown()
    assert sorted(seen) == list(range(4))
    assert {gpu for _, gpu in seen.values()} <= {"0", "1"}  # each fit sees one GPU


def test_warm_pool_is_used_by_run_and_ended_by_close():
    executor = ProcessExecutor(workers=2, gpus=())
    executor.warm(0)
    assert "pool" not in executor._pool  # nothing to run: nothing started
    executor.warm(5)
    pool = executor._pool["pool"]
    assert len(pool._processes) == 2  # started now, before any fit is known
    seen: dict[int, str] = {}
    executor.run(visible_devices_fit, None, [EnvTask(index=0, fit_id="t0")],
                 lambda t, out: seen.__setitem__(t.index, out))
    assert [gpu for _, gpu in seen.values()] == [None] and "pool" not in executor._pool
    assert pool._shutdown_thread
    # warm, then never run (the data failed to load): close ends the workers
    executor.warm(1)
    assert len(executor._pool["pool"]._processes) == 1  # one fit: one worker
    executor.close()
    executor.warm(3)
    processes = list(executor._pool["pool"]._processes.values())
    assert len(processes) == 2
    executor.close()
    deadline = time.monotonic() + 30
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(p.is_alive() for p in processes) and "pool" not in executor._pool
