"""Faults in the grid: a diverged or failing fit is recorded as failed; one run per folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.experiments import parse_config, run_experiment
from fairser.experiments.store import ResultFolderBusy, RunLock


def _run(settings, layers, out, **kw):
    return run_experiment(parse_config(settings), out_dir=out, progress=False,
                          console=Console(quiet=True), backend=layers.backend(**kw))


def test_diverged_and_failing_fits_are_marked_failed_not_scored(small_settings, tmp_path):
    layers = FakeLayers(diverge={("pa-cfa", 0)}, raise_in={("source-only", 1)})
    result = _run(small_settings, layers, tmp_path / "run", report=True)
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    failed = df[df["status"] == "failed"]
    # pa-cfa seed 0 and source-only seed 1, two emotions each, scored on two corpora
    assert len(failed) == 2 * 2 * 2
    assert set(zip(failed["method"], failed["seed"], strict=True)) == {("pa-cfa", 0),
                                                                       ("source-only", 1)}
    for col in ("uar", "dsp", "deo_max", "uar_m", "gc_acc", "probe"):
        assert failed[col].isna().all(), col  # never UAR 0.5 / dSP 0 for a broken model
    diverged = failed[failed["method"] == "pa-cfa"]["reason"]
    assert diverged.str.contains("not finite (training diverged)", regex=False).all()
    assert failed[failed["method"] == "source-only"]["reason"].str.contains("diverged").all()
    ok = df[df["status"] == "ok"]
    assert len(ok) == len(df) - len(failed) and ok["uar"].notna().all()
    assert ok["reason"].isna().all()  # empty in the CSV
    assert len(result.failed) == 4 and all(reason for _, reason in result.failed)
    assert {key.split("__")[0] for key, _ in result.failed} == {"pa-cfa", "source-only"}
    # the report and the paired tests see only the scored fits; no model of a failed fit
    preds = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert not ((preds["method"] == "pa-cfa") & (preds["seed"] == 0)).any()
    assert result.report is not None and result.report.is_file()
    models = [json.loads(p.read_text()) for p in (tmp_path / "run").glob("models/*/run.json")]
    assert (("pa-cfa", 0) not in {(m["method"], m["seed"]) for m in models})
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["failed"] == 4
    # a rerun tries the failed fits again (and only those)
    again = FakeLayers()
    rerun = _run(small_settings, again, tmp_path / "run")
    assert len(again.fits) == 4 and not rerun.failed
    assert (pd.read_csv(tmp_path / "run" / "results.csv")["status"] == "ok").all()


def test_failed_linear_baseline_on_non_finite_features(small_settings, tmp_path, monkeypatch):
    import grid_fakes

    original = grid_fakes.FakeFeatures.__getitem__

    def poisoned(self, key):
        arr = np.array(original(self, key), dtype=np.float32)
        if key.startswith("src/"):
            arr[..., 0] = np.inf
        return arr

    monkeypatch.setattr(grid_fakes.FakeFeatures, "__getitem__", poisoned)
    settings = {**small_settings, "methods": ["pa"], "seeds": [0],
                "probe": {"enabled": False}}
    layers = FakeLayers(raise_in={("pa", 0)})  # the fake fit would choke on inf features
    result = _run(settings, layers, tmp_path / "run")
    base = result.results[result.results["method"] == "linear-baseline"]
    assert (base["status"] == "failed").all() and base["uar"].isna().all()
    assert base["reason"].str.contains("NaN or infinite; re-extract", regex=False).all()


def test_second_run_on_a_locked_folder_says_so(small_settings, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from fairser.experiments.store import RunLock\n"
         f"with RunLock({str(out)!r}, command='fairser run exp.yaml'):\n"
         "    print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ResultFolderBusy) as info:
            _run(small_settings, FakeLayers(), out)
        msg = str(info.value)
        assert "another run is writing to this folder" in msg and f"pid {holder.pid}" in msg
        assert "fairser run exp.yaml" in msg and "\n" not in msg
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel releases the lock
        holder.wait(timeout=30)
    assert (out / ".lock").exists()  # left behind, and harmless
    result = _run(small_settings, FakeLayers(), out)
    assert not result.failed and len(result.results) == 20


def test_lock_is_released_on_exit_and_reentrant_after(tmp_path):
    with RunLock(tmp_path, command="a"):
        with pytest.raises(ResultFolderBusy), RunLock(tmp_path, command="b"):
            pass  # pragma: no cover - the lock is held by this process's other descriptor
    with RunLock(tmp_path, command="c"):
        assert (tmp_path / ".lock").read_text().startswith(f"pid {os.getpid()}: c")
