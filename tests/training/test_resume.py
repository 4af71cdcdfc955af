"""Checkpoints: a run interrupted (or killed) mid-way resumes to exactly the same model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fairser.training.loop as loop_module
from fairser.errors import TrainingError
from fairser.training import fit
from fairser.training.checkpoint import load_tensors

CONFTEST = Path(__file__).with_name("conftest.py")


def _strip(history: dict) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history["epochs"]]


@pytest.mark.parametrize("stop_after", [2, 6])  # inside stage 1; inside stage 2
def test_interrupted_run_resumes_exactly(
    small_pair, fast_config, tmp_path, monkeypatch, stop_after
):
    src, tgt, feats = small_pair
    kw = dict(
        source=src,
        target=tgt,
        features=feats,
        method="pa-fairw",
        emotion="angry",
        config=fast_config,
        seed=5,
        progress=False,
    )
    reference = fit(**kw)

    real = loop_module._run_epoch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        if calls["n"] == stop_after:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, "_run_epoch", flaky)
    with pytest.raises(KeyboardInterrupt):
        fit(workdir=tmp_path / "run", **kw)
    _, meta = load_tensors(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert len(meta["history"]) == stop_after
    monkeypatch.setattr(loop_module, "_run_epoch", real)
    resumed = fit(workdir=tmp_path / "run", **kw)
    assert _strip(resumed.history) == _strip(reference.history)
    assert np.array_equal(resumed.predict_proba(tgt, feats), reference.predict_proba(tgt, feats))
    # a finished workdir returns the saved model without training again
    monkeypatch.setattr(loop_module, "_run_epoch", None)
    again = fit(workdir=tmp_path / "run", **kw)
    assert np.array_equal(again.predict_proba(tgt, feats), reference.predict_proba(tgt, feats))


def test_workdir_of_another_run_is_refused(small_pair, fast_config, tmp_path):
    src, tgt, feats = small_pair
    kw = dict(
        source=src,
        target=tgt,
        features=feats,
        emotion="angry",
        config=fast_config,
        progress=False,
        workdir=tmp_path / "run",
    )
    fit(method="pa", seed=0, **kw)
    with pytest.raises(TrainingError, match="another config, data, method or seed"):
        fit(method="pa", seed=1, **kw)


_CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("synth", {conftest!r})
mod = importlib.util.module_from_spec(spec)
sys.modules["synth"] = mod
spec.loader.exec_module(mod)
from fairser.training import fit
src, tgt, feats = mod.make_pair(seed=0, n_source=200, n_target=120, dim=12)
cfg = dict(mod.FAST, stage1_epochs=40, stage2_epochs=3, patience=40)
fit(source=src, target=tgt, features=feats, method="pa-adv", emotion="angry", config=cfg,
    seed=2, workdir={workdir!r}, progress=False)
"""


def test_killed_process_resumes(small_pair, fast_config, tmp_path):
    src, tgt, feats = small_pair
    workdir = tmp_path / "killed"
    cfg = {**fast_config, "stage1_epochs": 40, "stage2_epochs": 3, "patience": 40}
    code = _CHILD.format(conftest=str(CONFTEST), workdir=str(workdir))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    last = workdir / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    killed_at = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if last.exists():
                try:
                    _, meta = load_tensors(last)
                except TrainingError:
                    meta = None
                if meta and meta["stage"] == 1 and meta["epoch"] >= 3:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_at = meta["epoch"]
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed_at is not None, f"child never checkpointed: {proc.stderr.read().decode()[-500:]}"
    assert not (workdir / "model").exists()
    kw = dict(
        source=src,
        target=tgt,
        features=feats,
        method="pa-adv",
        emotion="angry",
        config=cfg,
        seed=2,
        progress=False,
    )
    resumed = fit(workdir=workdir, **kw)
    reference = fit(**kw)
    assert _strip(resumed.history) == _strip(reference.history)
    assert np.array_equal(resumed.predict_proba(tgt, feats), reference.predict_proba(tgt, feats))


def test_kill_between_early_stop_and_stage_end_resumes_exactly(
    small_pair, fast_config, tmp_path, monkeypatch
):
    from fairser.training.checkpoint import Checkpointer

    src, tgt, feats = small_pair
    cfg = {**fast_config, "stage1_epochs": 30, "patience": 1}
    kw = dict(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="angry",
        config=cfg,
        seed=1,
        progress=False,
    )
    reference = fit(**kw)
    real = Checkpointer.save_last

    def dies_at_stage_end(self, *, net, optimizer, table, meta):
        if meta["done"]:
            raise KeyboardInterrupt
        return real(self, net=net, optimizer=optimizer, table=table, meta=meta)

    monkeypatch.setattr(Checkpointer, "save_last", dies_at_stage_end)
    with pytest.raises(KeyboardInterrupt):
        fit(workdir=tmp_path / "run", **kw)
    monkeypatch.setattr(Checkpointer, "save_last", real)
    resumed = fit(workdir=tmp_path / "run", **kw)
    assert _strip(resumed.history) == _strip(reference.history)
    assert len([e for e in reference.history["epochs"] if e["stage"] == 1]) < 30


def test_finished_workdir_keeps_model_and_config_not_checkpoints(small_pair, fast_config, tmp_path):
    src, tgt, feats = small_pair
    fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="angry",
        config=fast_config,
        seed=0,
        progress=False,
        workdir=tmp_path / "run",
    )
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["stage1_epochs"] == fast_config["stage1_epochs"] and "alpha" in cfg
    assert not (tmp_path / "run" / "checkpoints").exists()
