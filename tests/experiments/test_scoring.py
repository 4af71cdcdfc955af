"""Scoring helpers: the probe's row sample, model outputs that are not finite."""

from __future__ import annotations

import math

import numpy as np
import pytest
from grid_fakes import FakeLayers, FakeModel, make_manifest

from fairser.experiments import parse_config
from fairser.experiments.scoring import (
    NonFiniteOutputs,
    decisions,
    model_outputs,
    probe,
    probe_rows,
)


def test_probe_on_its_sampled_rows_equals_probe_on_every_row(small_settings):
    cfg = parse_config({**small_settings, "probe": {"max_rows": 40}})
    df = make_manifest("c", speakers_per_gender=4, per_emotion=5, with_splits=False)
    assert len(df) == 160
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(df), 6))
    x[:, 0] += np.where(df["gender"] == "M", 2.0, -2.0)
    backend = FakeLayers().backend(real_metrics=True)
    idx = probe_rows(len(df), 40)
    assert len(idx) == 40 and np.all(np.diff(idx) > 0)
    every = probe(backend, cfg, x, df)
    sampled = probe(backend, cfg, x[idx], df)  # what input_probes pools
    assert not math.isnan(every) and every == sampled


def test_non_finite_outputs_are_named(manifest_factory):
    df = manifest_factory("c", speakers_per_gender=2, per_emotion=2, with_splits=False)
    feats = FakeLayers().extract(df, "fake")
    model = FakeModel(np.full(6, np.nan), 0.0, head=True)
    with pytest.raises(NonFiniteOutputs, match=r"^fit-x on c: the model's probabilities are "
                                               r"not finite \(training diverged\)"):
        model_outputs(model, df, feats, where="fit-x on c")
    ok = FakeModel(np.ones(6), 0.0, head=False)
    proba, y_pred, emb, gc = model_outputs(ok, df, feats, where="x")
    assert proba.shape == (len(df),) and set(y_pred) <= {0, 1} and gc is None


def test_the_models_own_labels_are_the_predictions(manifest_factory):
    df = manifest_factory("c", speakers_per_gender=2, per_emotion=2, with_splits=False)
    feats = FakeLayers().extract(df, "fake")
    rng = np.random.default_rng(1)
    plain = FakeModel(rng.normal(size=6), 0.0, head=False)
    proba, y_plain, _, _ = model_outputs(plain, df, feats, where="x")
    np.testing.assert_array_equal(y_plain, (proba >= 0.5).astype(int))
    own = FakeModel(plain.coef, 0.0, head=False, threshold=0.9)
    _, y_own, _, _ = model_outputs(own, df, feats, where="x")
    np.testing.assert_array_equal(y_own, (proba >= 0.9).astype(int))
    assert (y_own != y_plain).any()


def test_labels_of_the_wrong_length_are_named():
    out = type("O", (), {"labels": np.zeros(3)})()
    with pytest.raises(NonFiniteOutputs, match="gives .3,. labels for 4 rows"):
        decisions(out, np.zeros(4), where="fit-x")
