"""Grid fit ids: pinned values, and the options that only say where a fit runs stay out."""

from __future__ import annotations

from typing import Any

import pytest

from fairser.errors import ConfigError
from fairser.experiments import parse_config, planning, run_experiment
from fairser.experiments.planning import on_device, plan_tasks, reference_id

#: Ids of :func:`_settings` computed before device / num_workers / cache_mb left the digest
#: (fairser 0.1.0). Run folders written since then must keep reusing their records.
PINNED = [
    "linear-baseline__angry__seed0__fake-target__all__879fec4da604",
    "pa-cfa__angry__seed0__fake-target__all__56d0f5f1c0cc",
    "tuned__angry__seed0__fake-target__all__e03a7ba2da52",
]
PINNED_REFERENCE = "reference__e2c8ee09ef48"


@pytest.fixture(autouse=True)
def _fixed_version(monkeypatch):
    """Ids hash the installed fairser version; pin it so these tests outlive a release."""
    monkeypatch.setattr(planning, "_fairser_version", lambda: "0.1.0")


def _settings(training: dict[str, Any] | None = None,
              variant: dict[str, Any] | None = None,
              features: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "pin", "source": "fake-source:/x", "targets": ["fake-target:/y"],
            "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry"],
            "methods": ["pa-cfa", {"name": "tuned", "method": "pa",
                                   "training": {"alpha": 0.3, **(variant or {})}}],
            "seeds": [0], "bootstrap": {"n_resamples": 0},
            "training": {"lr": 0.001, "epochs": 3, **(training or {})},
            **({"features": features} if features else {})}


def _ids(settings: dict[str, Any]) -> list[str]:
    return [t.fit_id for t in plan_tasks(parse_config(settings))]


def test_fit_ids_of_a_config_without_runtime_options_are_pinned():
    cfg = parse_config(_settings())
    assert _ids(_settings()) == PINNED
    assert reference_id(cfg) == PINNED_REFERENCE


@pytest.mark.parametrize("runtime", [{"device": "auto"}, {"device": "cpu"},
                                     {"num_workers": 2}, {"cache_mb": 0},
                                     {"device": "cuda:1", "num_workers": 4, "cache_mb": 1024}])
def test_runtime_options_leave_fit_ids_unchanged(runtime):
    assert _ids(_settings(training=runtime)) == PINNED
    assert _ids(_settings(variant=runtime)) == PINNED  # a variant's own training block


@pytest.mark.parametrize("changed", [{"lr": 0.002}, {"num_threads": 1}, {"precision": "bf16"}])
def test_options_that_change_the_result_change_fit_ids(changed):
    ids = _ids(_settings(training=changed))
    # every trained fit gets a new id; the linear baseline does not use `training:`
    assert ids[0] == PINNED[0] and ids[1] != PINNED[1] and ids[2] != PINNED[2]
    variant = _ids(_settings(variant=changed))
    assert variant[:2] == PINNED[:2] and variant[2] != PINNED[2]


def test_feature_runtime_options_leave_ids_unchanged_but_precision_does_not():
    same = _settings(features={"device": "cuda", "batch_seconds": 30, "precision": "fp32"})
    assert _ids(same) == PINNED and reference_id(parse_config(same)) == PINNED_REFERENCE
    bf16 = _settings(features={"precision": "bf16"})  # other features: other results
    assert not set(_ids(bf16)) & set(PINNED)
    assert reference_id(parse_config(bf16)) != PINNED_REFERENCE


def test_on_device_sets_every_device_and_keeps_ids():
    cfg = parse_config(_settings(variant={"device": "cuda"}))
    moved = on_device(cfg, "cpu")
    assert moved.training["device"] == "cpu" and moved.features.device == "cpu"
    assert moved.variant("tuned").training["device"] == "cpu"
    assert planning.training_options(moved, (), "tuned")["device"] == "cpu"
    assert cfg.training.get("device") is None  # the loaded config is left as it was
    assert [t.fit_id for t in plan_tasks(moved)] == PINNED
    with pytest.raises(ConfigError, match=r"device 'gpu' is not one of auto \| cpu"):
        on_device(cfg, "gpu")


def test_extraction_options_reach_the_backend_and_a_resume_reuses_every_fit(
        tmp_path, fake_layers):
    settings = {"name": "fake", "source": "fake-source:/x", "targets": ["fake-target:/y"],
                "run_emotions": ["angry"], "methods": ["pa"], "seeds": [0],
                "bootstrap": {"n_resamples": 0}, "probe": {"enabled": False}}
    first = run_experiment(parse_config(settings), out_dir=tmp_path, backend=fake_layers.backend(),
                           progress=False)
    assert fake_layers.extract_runtime == [{"device": "auto", "precision": "fp32",
                                            "batch_seconds": None}]
    assert first.n_skipped == 0 and len(fake_layers.fits) == 1  # pa (the floor is no network)
    moved = {**settings, "features": {"device": "cpu", "batch_seconds": 12.5},
             "training": {"device": "cpu", "num_workers": 0, "cache_mb": 0}}
    again = run_experiment(parse_config(moved), out_dir=tmp_path, backend=fake_layers.backend(),
                           progress=False)
    assert fake_layers.extract_runtime[-1] == {"device": "cpu", "precision": "fp32",
                                               "batch_seconds": 12.5}
    assert again.n_skipped == again.n_runs and len(fake_layers.fits) == 1  # nothing retrained
