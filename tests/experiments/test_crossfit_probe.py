"""Probes of a model with an embedding eraser are cross-fitted; every other probe is unchanged.

The eraser of ``erase_on: embedding`` is fitted on the source training rows and the target rows
it then erases. Probing its output on those rows scores far BELOW chance (an in-sample
artefact); the grid refits it per probe fold without the held-out speakers instead
(``probe_protocol: cross-fitted``). A fake model with a real LEACE eraser checks the figures;
a real tiny recipe model checks that the refit replays the training code's eraser exactly.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from grid_fakes import FakeFeatures, FakeLayers, make_manifest, recipe_grid_config
from rich.console import Console

from fairser.experiments import RECOMMENDED, parse_config, run_experiment
from fairser.experiments.crossfit import erased_probe_inputs
from fairser.experiments.scoring import crossfit_note, probe
from fairser.metrics.probe import mlp_gender_probe


class _EraserModel:
    """Pooled features as the embedding, then a fitted embedding eraser (as FittedModel)."""

    def __init__(self, eraser) -> None:
        self.levers = SimpleNamespace(embedding_eraser=eraser)
        self.config = SimpleNamespace(attribute="gender", target_split=None,
                                      source_train_split="train")

    def outputs(self, manifest, features):
        from fairser.training.output_levers import apply_embedding_eraser

        emb = np.stack([np.asarray(features[f"{c}/{u}"], np.float64).mean(axis=(0, 1))
                        for c, u in zip(manifest["corpus"], manifest["utt_id"], strict=True)])
        if self.levers.embedding_eraser is not None:
            labels = np.asarray([f"{c}/{g}" for c, g in
                                 zip(manifest["corpus"], manifest["gender"], strict=True)],
                                dtype=object)
            emb = apply_embedding_eraser(self.levers.embedding_eraser, emb, labels, what="t",
                                         warn=False)
        return SimpleNamespace(proba=np.full(len(manifest), 0.5), embedding=emb,
                               attribute=None, labels=None)


@pytest.fixture(scope="module")
def erased_setup():
    from fairser.levers import GenderEraser

    source = make_manifest("src", speakers_per_gender=6, per_emotion=4, with_splits=True)
    target = make_manifest("tgt", speakers_per_gender=10, per_emotion=4, with_splits=False)
    features = FakeFeatures(pd.concat([source, target], ignore_index=True))
    plain = _EraserModel(None)
    # the eraser as training fits it: source training rows + every target row, in sample
    rows = pd.concat([source[source["split"] == "train"], target], ignore_index=True)
    x = plain.outputs(rows, features).embedding
    labels = np.asarray([f"{c}/{g}" for c, g in zip(rows["corpus"], rows["gender"],
                                                    strict=True)], dtype=object)
    corpus = rows["corpus"].to_numpy(dtype=object)
    for c in np.unique(corpus):
        x[corpus == c] -= x[corpus == c].mean(0)
    eraser = GenderEraser().fit(x, sensitive_features=labels)
    layers = FakeLayers()
    backend = dataclasses.replace(layers.backend(real_metrics=True), mlp_probe=mlp_gender_probe)
    cfg = parse_config({"name": "t", "source": "fake-source:/x", "targets": ["fake-target:/y"],
                        "emotions": ["angry", "happy", "sad", "neutral"],
                        "run_emotions": ["angry"], "methods": ["pa"],
                        "probe": {"mlp": True}})
    return SimpleNamespace(source=source, target=target, features=features,
                           model=_EraserModel(eraser), plain=plain, backend=backend, cfg=cfg)


def test_in_sample_probe_is_below_chance_the_cross_fitted_one_at_chance(erased_setup):
    s = erased_setup
    raw = s.plain.outputs(s.target, s.features).embedding
    assert probe(s.backend, s.cfg, raw, s.target) > 0.9  # gender is linear in the features
    emb = s.model.outputs(s.target, s.features).embedding
    in_sample = probe(s.backend, s.cfg, emb, s.target)
    assert in_sample < 0.4  # the artefact the grid reported before
    erased = erased_probe_inputs(s.model, s.target, s.features, source=s.source,
                                 target=s.target)
    assert erased is not None and s.model.levers.embedding_eraser is not None  # restored
    assert np.allclose(erased.raw, raw)
    cross = probe(s.backend, s.cfg, emb, s.target, erased=erased)
    assert abs(cross - 0.5) < 0.1
    assert cross == probe(s.backend, s.cfg, emb, s.target, erased=erased)  # deterministic


def test_rows_the_eraser_never_saw_are_probed_through_the_deployed_eraser(erased_setup):
    s = erased_setup
    test_rows = s.source[s.source["split"] != "train"].reset_index(drop=True)  # unseen
    erased = erased_probe_inputs(s.model, test_rows, s.features, source=s.source,
                                 target=s.target)
    assert erased is not None
    assert not set(erased.groups) & set(erased.pool_groups)  # unseen: no fold drops a row
    emb = s.model.outputs(test_rows, s.features).embedding
    replay = erased.fit(erased.pool_x, erased.pool_labels)(erased.raw, erased.labels)
    assert np.allclose(replay, emb, atol=1e-9)  # each fold's refit IS the deployed eraser
    # 2 speakers of each gender: too few for a cross-fitted probe, which says so
    assert np.isnan(probe(s.backend, s.cfg, emb, test_rows, erased=erased))
    assert "4 speakers of each gender, found 2 F, 2 M" in crossfit_note(test_rows)
    assert crossfit_note(s.target) == ""


def test_models_without_an_eraser_keep_the_plain_probe(erased_setup):
    s = erased_setup
    assert erased_probe_inputs(s.plain, s.target, s.features, source=s.source,
                               target=s.target) is None
    assert erased_probe_inputs(object(), s.target, s.features, source=s.source,
                               target=s.target) is None  # a model without levers
    # without an eraser the probe is the backend's probe on the embeddings, as before
    raw = s.plain.outputs(s.target, s.features).embedding
    sex = s.target["gender"].astype(str).to_numpy(dtype=object)
    spk = s.target["speaker"].to_numpy(dtype=object)
    assert probe(s.backend, s.cfg, raw, s.target) == s.backend.gender_probe(
        raw, sensitive_features=sex, groups=spk)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    from fairser.experiments.backend import train_config
    from fairser.training import FittedModel, TrainConfig, fit

    if "thresholds" not in TrainConfig.model_fields:
        pytest.skip("needs the lever options of fairser.training")
    layers = FakeLayers()
    backend = dataclasses.replace(layers.backend(real_metrics=True), fit=fit,
                                  train_config=train_config, load_model=FittedModel.load,
                                  mlp_probe=mlp_gender_probe)
    root = tmp_path_factory.mktemp("crossfit")
    cfg = recipe_grid_config("crossfit", methods=["source-only", RECOMMENDED], probe={"mlp": True})
    result = run_experiment(cfg, out_dir=root / "run", progress=False,
                            console=Console(quiet=True), backend=backend)
    assert not result.failed, result.failed
    return result, layers


def test_the_grid_labels_the_protocol_and_replays_the_eraser(recipe_run):
    result, layers = recipe_run
    res = result.results.set_index(["method", "role"])
    assert res.loc[("recommended", "target"), "probe_protocol"] == "cross-fitted"
    assert res.loc[("recommended", "source"), "probe_protocol"] == "cross-fitted"
    assert res.loc[("source-only", "target"), "probe_protocol"] == "plain"
    for col in ("probe", "probe_mlp"):  # the fake target has 2 + 2 speakers: undefined
        assert np.isnan(res.loc[("recommended", "target"), col])
        assert "speakers of each gender" in res.loc[("recommended", "target"), f"{col}_note"]
        assert np.isfinite(res.loc[("source-only", "target"), col])  # plain: as before
    # the refit on ALL the eraser's fitting rows is the model's own eraser
    from fairser.training import FittedModel

    folder = next((result.out_dir / "models").glob("recommended*"))
    model = FittedModel.load(folder / "model")
    source = layers.load_corpus("fake-source:/x")
    target = layers.load_corpus("fake-target:/y")
    features = layers.extract(pd.concat([source, target], ignore_index=True), "fake")
    erased = erased_probe_inputs(model, target, features, source=source, target=target)
    assert erased is not None
    replay = erased.fit(erased.pool_x, erased.pool_labels)(erased.raw, erased.labels)
    deployed = model.outputs(target, features, warn=False).embedding
    assert np.allclose(replay, deployed, atol=1e-5), np.abs(replay - deployed).max()


def test_the_report_marks_cross_fitted_probes(recipe_run):
    from fairser.report._results import read_results
    from fairser.report.html import _detection_html

    result, _ = recipe_run
    text = _detection_html(read_results(result.results, need=["uar"]))
    assert "recommended *" in text and "source-only *" not in text
    assert "cross-fitted" in text
    plain = result.results[result.results["method"] == "source-only"]
    assert "cross-fitted" not in _detection_html(read_results(plain, need=["uar"]))
