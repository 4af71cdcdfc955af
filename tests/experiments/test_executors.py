"""Executors: local, processes:N and ray give the same results.csv; killed workers are re-run."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments import parse_config, run_experiment
from fairser.experiments.executors import (
    LocalExecutor,
    ProcessExecutor,
    RayExecutor,
    parse_executor,
    submission_order,
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
