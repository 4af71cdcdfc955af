"""The grid runner against fake lower layers: outputs, skipping, resuming, hashing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments import (
    BASELINE_METHOD,
    RESULT_COLUMNS,
    parse_config,
    plan_fits,
    run_experiment,
)


def _run(settings, layers, tmp_path, **kw):
    cfg = parse_config(settings)
    return run_experiment(cfg, out_dir=tmp_path / "run", progress=False,
                          console=Console(quiet=True), backend=layers.backend(**kw))


def test_grid_writes_one_row_per_run_and_corpus(small_settings, fake_layers, tmp_path):
    settings = {**small_settings, "bootstrap": {"n_resamples": 50}}
    result = _run(settings, fake_layers, tmp_path, report=True)
    df = result.results
    # 2 methods x 2 emotions x 2 seeds fits + 2 linear baselines; 2 corpora each
    assert len(fake_layers.fits) == 8
    assert len(df) == (8 + 2) * 2
    assert list(df.columns[:len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(df["role"]) == {"source", "target"}
    assert set(df["corpus"]) == {"fake-source", "fake-target"}
    assert set(df["method"]) == {"source-only", "pa-cfa", BASELINE_METHOD}
    # gc_acc: NaN without a gender head, a number with one
    assert df.loc[df["method"] == "source-only", "gc_acc"].isna().all()
    assert df.loc[df["method"] == "pa-cfa", "gc_acc"].between(0, 1).all()
    assert df["probe_input"].notna().all()
    # a speaker-disjoint probe needs two speakers per gender: the fake source test has one
    assert df.loc[df["role"] == "source", "probe"].isna().all()
    assert df.loc[(df["role"] == "target") & (df["method"] != BASELINE_METHOD),
                  "probe"].gt(0.9).all()
    # the planted emotion signal is learnt: UAR well above chance everywhere
    assert df["uar"].min() > 0.7
    # source rows are the source test split (2 speakers x 4 emotions x 4 utterances)
    assert (df.loc[df["role"] == "source", "n"] == 32).all()
    assert (df.loc[df["role"] == "target", "n"] == 4 * 4 * 5).all()
    on_disk = pd.read_parquet(result.out_dir / "results.parquet")
    assert len(on_disk) == len(df) and on_disk["uar"].dtype == float
    assert (result.out_dir / "results.csv").is_file()
    per_speaker = pd.read_csv(result.out_dir / "per_speaker.csv")
    assert set(per_speaker["speaker"]) >= {"tgt-M0", "tgt-F1"}
    assert result.table.read_text().startswith("| rows |")
    assert "source-only" in result.report.read_text()  # embeddings handed to the report
    # per-utterance predictions, and paired tests of every method against source-only
    preds = pd.read_parquet(result.out_dir / "predictions.parquet")
    assert len(preds) == int(df["n"].sum())
    assert {"utt_id", "speaker", "gender", "y_true", "y_pred", "seed"} <= set(preds.columns)
    comparisons = pd.read_csv(result.out_dir / "comparisons.csv")
    assert set(comparisons["method"]) == {"pa-cfa", BASELINE_METHOD}
    on_target = comparisons[comparisons["role"] == "target"]
    assert on_target["p_value"].between(0, 1).all() and len(on_target) == 2 * 2 * 3
    assert "comparisons=" in result.report.read_text()
    assert "comparisons=0" not in result.report.read_text()
    # every method's gaps against speaker reassignments, seeds averaged
    nulls = pd.read_csv(result.out_dir / "gap_null.csv")
    assert set(nulls["metric"]) == {"dsp", "deo_max"}
    assert set(nulls["method"]) == set(df["method"])
    assert nulls["p_value"].dropna().between(0, 1).all() and (nulls["runs"] >= 1).all()
    assert "gap_nulls=0" not in result.report.read_text()
    meta = json.loads((result.out_dir / "meta.json").read_text())
    assert meta["runs"] == 10 and "torch" in meta["versions"] or "numpy" in meta["versions"]
    # target rows are used unlabelled in training: the fit saw every target row
    assert {f["n_target"] for f in fake_layers.fits} == {80}


def test_rerun_skips_finished_runs(small_settings, fake_layers, tmp_path):
    first = _run(small_settings, fake_layers, tmp_path)
    n_fits = len(fake_layers.fits)
    second = _run(small_settings, fake_layers, tmp_path)
    assert len(fake_layers.fits) == n_fits  # nothing retrained
    assert second.n_skipped == second.n_runs == 10
    meta = json.loads((second.out_dir / "meta.json").read_text())
    assert [i["trained"] for i in meta["invocations"]] == [10, 0]
    pd.testing.assert_frame_equal(first.results, second.results)


def test_changed_option_reruns_only_affected_runs(small_settings, fake_layers, tmp_path):
    _run(small_settings, fake_layers, tmp_path)
    fake_layers.fits.clear()
    changed = {**small_settings, "training": {"C": 0.1}, "seeds": [0, 1, 2]}
    result = _run(changed, fake_layers, tmp_path)
    # the new training option changes every fit's hash; the linear baseline is unaffected
    assert len(fake_layers.fits) == 2 * 2 * 3
    assert result.n_skipped == 2
    assert result.results["config_hash"].nunique() == 12 + 2
    assert {f["config"]["C"] for f in fake_layers.fits} == {0.1}


def test_resume_after_interruption(small_settings, fake_layers, tmp_path):
    fake_layers.crash_at = 4  # the 4th fit is "killed"
    with pytest.raises(KeyboardInterrupt):
        _run(small_settings, fake_layers, tmp_path)
    records = sorted((tmp_path / "run" / "records").glob("*.json"))
    # reference probe + 2 linear baselines + 3 finished fits were stored; no partial files
    assert len(records) == 1 + 2 + 3
    assert not list((tmp_path / "run" / "records").glob(".*"))
    fake_layers.crash_at = None
    fake_layers.fits.clear()
    result = _run(small_settings, fake_layers, tmp_path)
    assert len(fake_layers.fits) == 8 - 3
    assert result.n_skipped == 2 + 3 and len(result.results) == 20


def test_subsampled_condition_reaches_the_fit(small_settings, fake_layers, tmp_path):
    settings = {**small_settings, "methods": ["pa-rew"], "seeds": [0],
                "source_subsample": [{"keep": 1.0}, {"gender": "F", "keep": 0.25}],
                "linear_baseline": False}
    result = _run(settings, fake_layers, tmp_path)
    sizes = {f["n_source"] for f in fake_layers.fits}
    # 2 F train speakers x 4 angry utterances = 8 rows; keep 25% -> 2, so 6 fewer rows
    assert sizes == {128, 122}
    assert set(result.results["condition"]) == {"all", "F25"}


def test_sweep_values_reach_training_and_columns(small_settings, fake_layers, tmp_path):
    settings = {**small_settings, "methods": ["pa-cfa"], "seeds": [0], "run_emotions": ["sad"],
                "sweep": {"params": {"alpha": [0.1, 1.0]}}, "linear_baseline": False}
    result = _run(settings, fake_layers, tmp_path)
    assert sorted(f["config"]["alpha"] for f in fake_layers.fits) == [0.1, 1.0]
    assert sorted(result.results["sweep_alpha"].unique()) == [0.1, 1.0]
    assert set(result.results["sweep"]) == {"alpha=0.1", "alpha=1.0"}


def test_unknown_method_and_training_key_fail_before_work(small_settings, fake_layers,
                                                          tmp_path):
    with pytest.raises(ConfigError, match="unknown method"):
        _run({**small_settings, "methods": ["pa-magic"]}, fake_layers, tmp_path)
    with pytest.raises(ConfigError, match="unknown key"):
        _run({**small_settings, "training": {"epochz": 3}}, fake_layers, tmp_path)
    assert fake_layers.extracted == 0 and not fake_layers.fits


def test_plan_is_seed_major(small_settings):
    plan = plan_fits(parse_config(small_settings), baselines=False)
    assert [p.seed for p in plan[:4]] == [0, 0, 0, 0]
    assert {p.method for p in plan[:2]} == {"source-only", "pa-cfa"}
    assert np.all(np.diff([p.seed for p in plan]) >= 0)


def test_multiclass_task_runs_one_model_per_method_and_seed(small_settings, fake_layers,
                                                            tmp_path):
    settings = {**small_settings, "task": "multiclass", "run_emotions": None, "seeds": [0],
                "bootstrap": {"n_resamples": 20}}
    result = _run(settings, fake_layers, tmp_path, report=True, real_metrics=True)
    assert {f["emotion"] for f in fake_layers.fits} == {None}
    assert {tuple(f["config"]["classes"]) for f in fake_layers.fits} == {
        ("angry", "happy", "sad", "neutral")}
    assert set(result.results["emotion"]) == {"all"}
    # four well-separated classes: far above the 0.25 chance level
    assert result.results["uar"].min() > 0.8
    preds = pd.read_parquet(result.out_dir / "predictions.parquet")
    assert set(preds["y_true"]) == {0, 1, 2, 3} and "score" not in preds.columns


def test_probe_mlp_is_a_column_computed_when_asked(small_settings, fake_layers, tmp_path):
    settings = {**small_settings, "methods": ["pa"], "seeds": [0], "run_emotions": ["sad"]}
    off = _run(settings, fake_layers, tmp_path / "off").results
    assert "probe_mlp" in off.columns and off["probe_mlp"].isna().all()
    on = _run({**settings, "probe": {"mlp": True, "mlp_max_rows": 50}}, FakeLayers(),
              tmp_path / "on").results
    target = on[(on["role"] == "target") & (on["method"] == "pa")]
    assert target["probe_mlp"].between(0.5, 1).all()
    assert on.loc[on["method"] == BASELINE_METHOD, "probe_mlp"].isna().all()
    # turning the MLP probe on re-runs the fits; off, the ids are those of before it existed
    assert set(off["run_id"]) & set(on["run_id"]) == set()
