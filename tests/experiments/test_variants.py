"""Named method variants in a grid: parsing, planning, training options, results, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments import parse_config, plan_fits, run_experiment
from fairser.experiments.planning import check_config, fit_id, training_options

RECIPE = {"name": "recommended", "method": "pa", "training": {"thresholds": "parity"}}


def _settings(small_settings, **kw):
    return {**small_settings, "methods": ["source-only", "pa", RECIPE], "seeds": [0],
            "run_emotions": ["angry"], "training": {"C": 0.5}, **kw}


def test_a_variant_is_its_own_method_with_its_own_options(small_settings):
    cfg = parse_config(_settings(small_settings))
    assert cfg.method_names() == ["source-only", "pa", "recommended"]
    assert cfg.base_method("recommended") == "pa" and cfg.base_method("pa") == "pa"
    assert training_options(cfg, (), "recommended") == {"C": 0.5, "thresholds": "parity",
                                                        "task": "binary"}
    assert training_options(cfg, (), "pa") == {"C": 0.5, "task": "binary"}
    methods = [s.method for s in plan_fits(cfg, baselines=False)]
    assert methods == ["source-only", "pa", "recommended"]
    ids = {s.method: fit_id(cfg, s)[0] for s in plan_fits(cfg, baselines=False)}
    assert ids["recommended"].startswith("recommended__") and len(set(ids.values())) == 3


def test_variant_overrides_the_grid_block_and_a_sweep_overrides_both(small_settings):
    recipe = {**RECIPE, "training": {"C": 2.0, "thresholds": "parity"}}
    cfg = parse_config(_settings(small_settings, methods=["pa", recipe],
                                 sweep={"params": {"C": [0.1, 0.2]},
                                        "methods": ["recommended"]}))
    assert training_options(cfg, (), "recommended")["C"] == 2.0
    points = cfg.sweep_points("recommended")
    assert points == [{"C": 0.1}, {"C": 0.2}] and cfg.sweep_points("pa") == [{}]
    assert training_options(cfg, points[1].items(), "recommended")["C"] == 0.2


def test_a_variant_of_source_only_is_not_swept_by_default(small_settings):
    base = {"name": "so-norm", "method": "source-only", "training": {"input_norm": "source"}}
    cfg = parse_config(_settings(small_settings, methods=[base, "pa"],
                                 sweep={"params": {"C": [0.1, 0.2]}}))
    assert cfg.sweep_points("so-norm") == [{}] and len(cfg.sweep_points("pa")) == 2


def test_the_grid_trains_the_base_method_and_reports_the_variant(small_settings, tmp_path):
    layers = FakeLayers()
    cfg = parse_config(_settings(small_settings))
    result = run_experiment(cfg, out_dir=tmp_path / "run", progress=False,
                            console=Console(quiet=True), backend=layers.backend())
    trained = {(f["method"], f["config"].get("thresholds")) for f in layers.fits}
    assert trained == {("source-only", None), ("pa", None), ("pa", "parity")}
    df = result.results
    assert set(df["method"]) == {"source-only", "pa", "recommended", "linear-baseline"}
    # the variant's model decides with its own threshold (0.3 in the fake): predictions show it
    preds = pd.read_parquet(result.out_dir / "predictions.parquet")
    rec = preds[preds["method"] == "recommended"]
    np.testing.assert_array_equal(rec["y_pred"], (rec["score"] >= 0.3).astype(int))
    pa = preds[preds["method"] == "pa"]
    np.testing.assert_array_equal(pa["y_pred"], (pa["score"] >= 0.5).astype(int))
    meta = json.loads((result.out_dir / "meta.json").read_text())
    assert meta["variants"] == {"recommended": "pa + thresholds=parity"}
    run = [json.loads(p.read_text()) for p in (result.out_dir / "models").glob("*/run.json")]
    assert {(r["method"], r["trains"]) for r in run} >= {("recommended", "pa")}


@pytest.mark.parametrize(("variant", "message"), [
    ({"name": "pa", "method": "pa"}, r"methods\.1\.name: 'pa' is the name of a registered"),
    ({"name": "x", "method": "nope"}, r"unknown method\(s\) \['nope'\]"),
    ({"name": "x", "method": "pa", "training": {"bogus": 1}},
     r"variant 'x': training: unknown key"),
])
def test_bad_variants_fail_before_work(small_settings, variant, message):
    cfg = parse_config(_settings(small_settings, methods=["source-only", variant]))
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, FakeLayers().backend())


@pytest.mark.parametrize(("methods", "message"), [
    (["pa", {"name": "r", "method": "pa", "colour": 1}], "colour"),
    (["pa", {"method": "pa"}], "name"),
    ([RECIPE, RECIPE], "listed twice"),
    ([{"name": "r", "method": "pa", "training": {"seed": 3}}], "seed"),
    ([{"name": "bad name", "method": "pa"}], "name"),
])
def test_malformed_variants_are_one_line_errors(small_settings, methods, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(_settings(small_settings, methods=methods))
    assert "\n" not in str(info.value)
