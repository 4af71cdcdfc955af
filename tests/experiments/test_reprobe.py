"""A resumed grid never serves probe figures of an older protocol (records keep their ids).

Records written before the probes of embedding-eraser models were cross-fitted carry their
in-sample figures and no ``probe_protocol``. On resume such a record is rescored from its
stored model (no training), or refitted when no model is stored; records of models without an
eraser, and records of the current protocol, are reused as they are.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from grid_fakes import FakeLayers, make_manifest
from rich.console import Console

from fairser.experiments import RECOMMENDED, parse_config, run_experiment
from fairser.experiments.planning import plan_tasks
from fairser.experiments.reprobe import needs_reprobe, record_probe_version
from fairser.experiments.scoring import PROBE_VERSION

SETTINGS = {
    "name": "reprobe", "source": "fake-source:/x", "targets": ["fake-target:/y"],
    "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry"],
    "methods": ["source-only", RECOMMENDED], "seeds": [0], "linear_baseline": False,
    "bootstrap": {"n_resamples": 0},
    "training": {"stage1_epochs": 2, "stage2_epochs": 1, "batch_size": 16, "num_threads": 1,
                 "speaker_norm_min_utterances": 2,
                 "model": {"d_model": 16, "n_heads": 2, "ff_dim": 16, "embed_dim": 8,
                           "gc_hidden": 8}}}


class _WideTarget(FakeLayers):
    """The fake corpora with 4 + 4 target speakers: a cross-fitted probe is defined there."""

    def load_corpus(self, spec, *, options=None):
        if spec.startswith("fake-target"):
            return make_manifest("tgt", speakers_per_gender=4, per_emotion=3, with_splits=False)
        return super().load_corpus(spec, options=options)


def _backend(calls: list[str]):
    from fairser.experiments.backend import train_config
    from fairser.training import FittedModel, TrainConfig, fit

    if "thresholds" not in TrainConfig.model_fields:
        pytest.skip("needs the lever options of fairser.training")

    def counted_fit(**kwargs):
        calls.append(kwargs["method"])
        return fit(**kwargs)

    return dataclasses.replace(_WideTarget().backend(real_metrics=True), fit=counted_fit,
                               train_config=train_config, load_model=FittedModel.load)


def _run(out: Path, calls: list[str]):
    return run_experiment(parse_config(SETTINGS), out_dir=out, progress=False,
                          console=Console(quiet=True), backend=_backend(calls))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run folder (current protocol) and its results."""
    out = tmp_path_factory.mktemp("reprobe") / "run"
    calls: list[str] = []
    result = _run(out, calls)
    assert not result.failed and sorted(calls) == ["pa", "source-only"]
    return out, result.results.set_index(["method", "role"])


def _record(folder: Path, method: str) -> Path:
    return next((folder / "records").glob(f"{method}__*.json"))


def _age(path: Path, probe: float) -> dict:
    """Rewrite the record at ``path`` as the in-sample code wrote it (no protocol marker)."""
    record = json.loads(path.read_text())
    record.pop("probe_version", None)
    for row in record["rows"]:
        for key in ("probe_protocol", "probe_note", "probe_mlp_note"):
            row.pop(key, None)
        row["probe"] = probe
    path.write_text(json.dumps(record))
    return record


def _copy(finished, tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(finished[0], folder)
    return folder


def test_records_of_the_current_protocol_are_reused(finished, tmp_path):
    folder = _copy(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in (folder / "records").glob("*.json")}
    calls: list[str] = []
    result = _run(folder, calls)
    assert calls == [] and result.n_skipped == result.n_runs == 2
    assert {p.name: p.read_bytes() for p in (folder / "records").glob("*.json")} == before
    for name, text in before.items():
        if not name.startswith("reference__"):  # the input-feature probe's record
            assert json.loads(text)["probe_version"] == PROBE_VERSION


def test_an_old_protocol_record_is_rescored_from_its_model(finished, tmp_path):
    folder = _copy(finished, tmp_path)
    original = finished[1]
    ids = {p.name for p in (folder / "records").glob("*.json")}
    _age(_record(folder, "recommended"), 0.123)  # the in-sample artefact, below chance
    _age(_record(folder, "source-only"), 0.777)  # no eraser: the old figure stands
    calls: list[str] = []
    result = _run(folder, calls)
    assert calls == []  # rescored from the stored model, nothing trained
    assert result.n_skipped == 1 and not result.failed
    assert result.n_rescored == 1  # counted as rescored, not as trained
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["probes_rescored"] == 1 and meta["invocations"][-1]["trained"] == 0
    res = result.results.set_index(["method", "role"])
    target = res.loc[("recommended", "target")]
    assert target["probe_protocol"] == "cross-fitted"
    assert np.isfinite(target["probe"]) and target["probe"] != 0.123
    assert target["probe"] == pytest.approx(original.loc[("recommended", "target"), "probe"],
                                            abs=1e-9)
    assert target["uar"] == original.loc[("recommended", "target"), "uar"]  # kept
    assert "speakers of each gender" in res.loc[("recommended", "source"), "probe_note"]
    # a model without an eraser: its record is served as it is (old runs keep their figures)
    assert (res.xs("source-only")["probe"] == 0.777).all()
    assert res.xs("source-only")["probe_protocol"].isna().all()
    record = json.loads(_record(folder, "recommended").read_text())
    assert record["probe_version"] == PROBE_VERSION
    assert record["probe_rescored"] == "in-sample -> cross-fitted"
    # fit ids unchanged: no new record, the plan names the same files
    assert {p.name for p in (folder / "records").glob("*.json")} == ids
    assert {f"{t.fit_id}.json" for t in plan_tasks(parse_config(SETTINGS))} <= ids
    calls.clear()  # rescored once: the next resume reuses everything
    assert _run(folder, calls).n_skipped == 2 and calls == []


def test_an_old_protocol_record_without_a_model_is_refitted(finished, tmp_path):
    folder = _copy(finished, tmp_path)
    _age(_record(folder, "recommended"), 0.123)
    shutil.rmtree(next((folder / "models").glob("recommended__*")))
    calls: list[str] = []
    result = _run(folder, calls)
    assert calls == ["pa"]  # the recommended variant trains pa
    assert result.n_rescored == 0  # trained again, counted as trained
    res = result.results.set_index(["method", "role"])
    assert res.loc[("recommended", "target"), "probe_protocol"] == "cross-fitted"
    assert res.loc[("recommended", "target"), "probe"] != 0.123
    record = json.loads(_record(folder, "recommended").read_text())
    assert record["probe_version"] == PROBE_VERSION and "probe_rescored" not in record


def test_which_records_need_new_probes():
    cfg = parse_config(SETTINGS)
    eraser = {"erase": "leace"}
    in_sample = {"status": "ok", "rows": [{"probe": 0.1}]}
    first_crossfit = {"status": "ok", "rows": [{"probe": 0.5, "probe_protocol": "cross-fitted"}]}
    assert record_probe_version(in_sample) == 1
    assert record_probe_version(first_crossfit) == 2  # before the key existed
    assert record_probe_version({"probe_version": 2, "rows": []}) == 2
    assert needs_reprobe(cfg, eraser, in_sample)
    assert not needs_reprobe(cfg, eraser, first_crossfit)
    assert not needs_reprobe(cfg, {}, in_sample)  # no eraser: same protocol as before
    assert not needs_reprobe(cfg, {"erase": "leace", "erase_on": "inputs"}, in_sample)
    assert not needs_reprobe(cfg, eraser, {**in_sample, "status": "failed"})
    off = parse_config({**SETTINGS, "probe": {"enabled": False}})
    assert not needs_reprobe(off, eraser, in_sample)


def test_the_cli_summary_counts_rescored_fits_apart():
    from types import SimpleNamespace

    from fairser.cli.experiment import _summary

    console = Console(record=True, width=200)
    result = SimpleNamespace(n_runs=10, n_skipped=6, n_rescored=3, wall_s=5.0, notes=[],
                             out_dir=Path("run"), table=None, report=None, failed=[])
    _summary(console, result)
    assert "10 runs (1 trained, 3 rescored, 6 reused)" in console.export_text()
    console = Console(record=True, width=200)
    _summary(console, SimpleNamespace(**{**vars(result), "n_rescored": 0}))
    assert "10 runs (4 trained, 6 reused)" in console.export_text()
