"""Executors with real training on real audio: ``local``, ``processes:2`` and ``ray:2`` run one
tiny EmoDB -> CASIA grid (log-mel features, a small transformer, two methods x two seeds) and
write the same results.csv apart from the fit timings.

The fake-backend tests (test_executors.py) check the executors' bookkeeping; this one checks
that the real lower layers (corpus adapters, feature store, torch training, scoring) give the
same numbers whichever process or Ray worker runs a fit. Needs ../shared/data (run in CI).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from fairser.experiments import parse_config, run_experiment
from fairser.experiments.executors import parse_executor

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

#: results.csv columns that time a fit (everything else must match exactly).
TIMING_COLUMNS = ["fit_s"]

#: EmoDB: every file of the two emotions (W anger, N neutral) of all ten speakers.
EMODB_LETTERS = ("W", "N")
#: CASIA: 12 of the 50 texts, in both emotions, of all four speakers (96 files).
CASIA_TEXTS = range(201, 213)


def _subset(shared: Path, root: Path) -> tuple[Path, Path]:
    """Symbolic links to a few real files of EmoDB and CASIA, in the adapters' layouts."""
    emodb = root / "emodb" / "wav"
    emodb.mkdir(parents=True)
    for path in sorted((shared / "emodb" / "wav").glob("*.flac")):
        if path.stem[5] in EMODB_LETTERS:
            (emodb / path.name).symlink_to(path)
    casia = root / "casia"
    for speaker in sorted(p.name for p in (shared / "casia").iterdir() if p.is_dir()):
        for emotion in ("angry", "neutral"):
            folder = casia / speaker / emotion
            folder.mkdir(parents=True)
            for text in CASIA_TEXTS:
                real = shared / "casia" / speaker / emotion / f"{text}.flac"
                (folder / real.name).symlink_to(real)
    return emodb.parent, casia


def _settings(emodb: Path, casia: Path, cache: Path) -> dict:
    return {
        "name": "executors-real", "source": f"emodb:{emodb}", "targets": [f"casia:{casia}"],
        "emotions": ["angry", "neutral"], "run_emotions": ["angry"],
        "methods": ["source-only", "pa"], "seeds": [0, 1], "linear_baseline": False,
        "features": {"frontend": "logmel", "cache_dir": str(cache)},
        "bootstrap": {"n_resamples": 0}, "probe": {"enabled": False, "reference": False},
        "embeddings_per_corpus": 0, "report": False,
        "training": {"stage1_epochs": 4, "stage2_epochs": 2, "batch_size": 16,
                     "num_threads": 1, "device": "cpu",
                     "model": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "embed_dim": 8,
                               "gc_hidden": 8}},
    }


def _csv_without_timing(path: Path) -> str:
    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=TIMING_COLUMNS)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def _histories(run: Path) -> dict[str, dict]:
    """Each fit's training history (losses, dev UAR per epoch) without its timings."""

    def untimed(value):
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items() if k != "seconds"}
        if isinstance(value, list):
            return [untimed(v) for v in value]
        return value

    records = (json.loads(p.read_text()) for p in (run / "records").glob("*.json"))
    return {r["run_id"]: untimed(r["history"]) for r in records if r.get("history")}


@pytest.fixture(scope="module")
def grid(shared_data, tmp_path_factory):
    """Run the grid with one executor into its own folder (one feature store for all)."""
    root = tmp_path_factory.mktemp("executors_real")
    emodb, casia = _subset(shared_data, root / "corpora")
    cfg = parse_config(_settings(emodb, casia, root / "cache"))

    def run(executor: str) -> Path:
        out = root / executor.replace(":", "-")
        run_experiment(cfg, out_dir=out, executor=parse_executor(executor), progress=False,
                       console=Console(quiet=True))
        return out

    return run


@pytest.fixture(scope="module")
def local_run(grid) -> Path:
    """The reference: every fit in this process."""
    return grid("local")


def test_local_grid_really_trains(local_run):
    results = pd.read_csv(local_run / "results.csv")
    assert len(results) == 2 * 2 * 2  # 2 methods x 2 seeds x (source test + target)
    assert (results["status"] == "ok").all(), results[["status", "reason"]]
    assert results["uar"].notna().all() and results["uar"].between(0, 1).all()
    assert set(results["corpus"]) == {"emodb", "casia"}
    assert (results["fit_s"] > 0).all()
    histories = _histories(local_run)
    assert sorted(histories) == sorted(set(results["run_id"]))  # every fit has one
    for run_id, history in histories.items():
        epochs = history["epochs"]
        stage1 = [e for e in epochs if e["stage"] == 1]
        assert len(stage1) == 4, run_id
        assert len(epochs) == (4 if run_id.startswith("source-only") else 6), run_id
        assert all(math.isfinite(e["loss"]) for e in epochs), epochs
        assert stage1[-1]["loss"] < stage1[0]["loss"], epochs  # the fit learned something
    # the models score utterances, not one constant: the scores vary within each fit
    preds = pd.read_parquet(local_run / "predictions.parquet")
    assert len(preds) == 4 * (42 + 96)
    assert (preds.groupby(["method", "seed"])["score"].std() > 1e-3).all()
    assert preds["score"].between(0, 1).all()


@pytest.mark.parametrize("executor", ["processes:2", "ray:2"])
def test_parallel_executor_reproduces_the_local_grid(grid, local_run, executor):
    if executor.startswith("ray"):
        pytest.importorskip("ray")
    out = grid(executor)
    assert json.loads((out / "meta.json").read_text())["executor"] == executor
    assert _csv_without_timing(out / "results.csv") == \
        _csv_without_timing(local_run / "results.csv")
    # per utterance: the same scores to the last bit, and the same training curves
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"),
                                  pd.read_parquet(local_run / "predictions.parquet"),
                                  check_exact=True)
    assert _histories(out) == _histories(local_run)
    assert sorted(p.name for p in (out / "records").glob("*.json")) == \
        sorted(p.name for p in (local_run / "records").glob("*.json"))
