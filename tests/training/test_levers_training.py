"""Fairness levers as TrainConfig options: every method, persistence, label blindness, parity."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from pair_fakes import LEVER_TINY
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from fairser.decision import decide
from fairser.errors import ConfigError, TrainingError
from fairser.training import METHODS, FittedModel, TrainConfig, fit
from fairser.training.output_levers import parity_gap

ALL_LEVERS = {
    "input_norm": "per-speaker",
    "erase": "leace",
    "thresholds": "parity",
    "selection": "target-parity",
    "self_train": 0.25,
}


@pytest.fixture(scope="module")
def pair(pair_factory):
    return pair_factory(seed=1, n_source=160, n_target=96, dim=8)


def _fit(pair, cfg, method="pa", emotion="angry", seed=0, **kw):
    src, tgt, feats = pair
    return fit(
        source=src,
        target=tgt,
        features=feats,
        method=method,
        emotion=emotion,
        config={**LEVER_TINY, **cfg},
        seed=seed,
        progress=False,
        **kw,
    )


def _quiet_outputs(model, rows, feats):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.outputs(rows, feats)


def test_digest_unchanged_at_lever_defaults() -> None:
    old = TrainConfig(bucketing=False)
    assert old.digest() == "7b094bb316e5ea99"
    explicit = TrainConfig(
        bucketing=False,
        speaker_norm_strength=0.3,  # only matters with per-speaker
        speaker_norm_min_utterances=5,
        erase="none",
        erase_on="inputs",
        erase_strength=0.5,
        thresholds="none",
        threshold_strength=0.2,
        selection="source-dev",
        selection_weight=3.0,
        self_train=0.0,
        self_train_rounds=4,
    )
    assert explicit.digest() == old.digest()
    for change in (
        {"input_norm": "per-speaker"},
        {"erase": "leace"},
        {"thresholds": "parity"},
        {"selection": "target-parity"},
        {"self_train": 0.2},
    ):
        assert TrainConfig(bucketing=False, **change).digest() != old.digest(), change
    a = TrainConfig(input_norm="per-speaker", speaker_norm_strength=0.5)
    assert a.digest() != TrainConfig(input_norm="per-speaker").digest()
    with pytest.raises(ValueError):
        TrainConfig(erase_strength=1.5)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_levers_compose_with_every_method(pair, method, tmp_path) -> None:
    src, tgt, feats = pair
    cfg = dict(ALL_LEVERS)
    if method in ("pa-adv", "pa-cfa"):  # the input-side and quadratic erasers too
        cfg.update(erase="qleace", erase_on="inputs" if method == "pa-adv" else "embedding")
    if method == "pa":  # an eraser on the inputs and one on the embedding
        cfg.update(erase_on="both")
    model = _fit(pair, cfg, method=method)
    lv = model.levers
    assert lv.speaker_norm is not None and lv.thresholds is not None
    erase_on = cfg.get("erase_on", "embedding")
    assert (lv.input_eraser is not None) == (erase_on in ("inputs", "both"))
    assert (lv.embedding_eraser is not None) == (erase_on in ("embedding", "both"))
    sel = model.history["selection"]
    assert sel["selection_weight"] == 1.0 and "stage1" in sel["selected"]
    assert all("target_dsp" in r for r in model.history["epochs"])
    out = _quiet_outputs(model, tgt, feats)
    assert out.labels.shape == (len(tgt),) and out.labels.dtype == np.int64
    # save/load round trip: identical predictions, levers listed in model.json
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert set(meta["levers"]) == {
        n
        for n in ("speaker_norm", "input_eraser", "embedding_eraser", "thresholds")
        if getattr(lv, n) is not None
    }
    back = FittedModel.load(tmp_path / "m")
    out2 = _quiet_outputs(back, tgt, feats)
    np.testing.assert_array_equal(out2.proba, out.proba)
    np.testing.assert_array_equal(out2.labels, out.labels)
    np.testing.assert_array_equal(out2.embedding, out.embedding)


def test_model_without_levers_has_no_lever_files(pair, tmp_path) -> None:
    src, tgt, feats = pair
    model = _fit(pair, {}, method="source-only")
    model.save(tmp_path / "m")
    assert "levers" not in json.loads((tmp_path / "m" / "model.json").read_text())
    assert not (tmp_path / "m" / "levers").exists()
    out = FittedModel.load(tmp_path / "m").outputs(tgt, feats)
    np.testing.assert_array_equal(out.labels, decide(out.proba))


def test_target_emotion_labels_are_never_read(pair) -> None:
    src, tgt, feats = pair
    garbled = tgt.assign(emotion=tgt["emotion"].sample(frac=1.0, random_state=3).to_numpy())
    garbled.loc[garbled.index[:10], "emotion"] = "angry"
    for method, cfg in (
        ("pa", ALL_LEVERS),
        ("source-only", {"thresholds": "parity", "erase": "qleace"}),
    ):
        a = _fit(pair, cfg, method=method)
        b = _fit((src, garbled, feats), cfg, method=method)
        oa, ob = _quiet_outputs(a, tgt, feats), _quiet_outputs(b, tgt, feats)
        np.testing.assert_array_equal(oa.proba, ob.proba)
        np.testing.assert_array_equal(oa.labels, ob.labels)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_parity_thresholds_close_the_target_gap(pair_factory, task) -> None:
    # a strong source shortcut (angry ~ male) that the plain rule carries to the target
    src, tgt, feats = pair_factory(
        seed=2, n_source=200, n_target=160, dim=8, shortcut=0.97, emo_amp=1.0
    )
    emotion = "angry" if task == "binary" else None
    cfg = {"thresholds": "parity", "task": task, "stage1_epochs": 6}
    model = _fit((src, tgt, feats), cfg, method="source-only", emotion=emotion)
    out = model.outputs(tgt, feats)
    g = tgt["gender"].to_numpy(dtype=object)
    n_cls = 2 if task == "binary" else 4
    plain, fair = parity_gap(decide(out.proba), g, n_cls), parity_gap(out.labels, g, n_cls)
    assert plain > 0.1, plain
    assert fair <= 0.05 < plain, (plain, fair)
    rec = model.history["levers"]["thresholds"]
    assert rec["fitted_on"] == "target rows passed to fit" and rec["rows"] == len(tgt)
    np.testing.assert_array_equal(model.predict(tgt, feats), out.labels)
    # strength 0: the plain rule
    zero = _fit(
        (src, tgt, feats), {**cfg, "threshold_strength": 0.0}, method="source-only", emotion=emotion
    )
    o0 = zero.outputs(tgt, feats)
    np.testing.assert_array_equal(o0.labels, decide(o0.proba))


def _probe(x, g):
    clf = LogisticRegression(max_iter=2000)
    return float(cross_val_score(clf, x, g, cv=4, scoring="balanced_accuracy").mean())


def test_leace_on_embedding_removes_linear_gender(pair) -> None:
    src, tgt, feats = pair
    plain = _fit(pair, {})
    erased = _fit(pair, {"erase": "leace"})
    g = tgt["gender"].to_numpy(dtype=object)
    before = _probe(plain.embed(tgt, feats), g)
    after = _probe(erased.embed(tgt, feats), g)
    assert before > 0.85 and after < 0.65, (before, after)
    assert erased.history["levers"]["head_refit"]["steps"] > 0
    # erasure is deterministic with the seed
    again = _fit(pair, {"erase": "leace"})
    np.testing.assert_array_equal(again.outputs(tgt, feats).proba, erased.outputs(tgt, feats).proba)


def test_missing_speaker_and_gender_columns_fall_back(pair) -> None:
    src, tgt, feats = pair
    model = _fit(pair, {"input_norm": "per-speaker", "thresholds": "parity", "erase": "qleace"})
    bare = tgt.drop(columns=["speaker", "gender"])
    with pytest.warns(UserWarning) as rec:
        out = model.outputs(bare, feats)
    text = " ".join(str(w.message) for w in rec)
    assert "without a speaker" in text and "plain decision rule" in text
    assert "unerased" in text
    np.testing.assert_array_equal(out.labels, decide(out.proba))
    # a speaker unseen in training: adapted to its own rows, one warning counting them
    other = tgt.assign(speaker="new-" + tgt["speaker"])
    with pytest.warns(
        UserWarning,
        match=r"0 row\(s\) with fitted speaker statistics, 96 "
        r"adapted",
    ) as rec:
        model.outputs(other, feats)
    assert sum("per-speaker" in str(w.message) for w in rec) == 1


def test_per_speaker_source_only_adapts_the_target(pair) -> None:
    src, tgt, feats = pair
    model = _fit(pair, {"input_norm": "per-speaker"}, method="source-only")
    assert not any(k.startswith("tgt/") for k in model.levers.speaker_norm.speaker_keys)
    with pytest.warns(UserWarning, match="adapted to their own rows"):
        model.outputs(tgt, feats)
    assert model.last_norm_report.counts["adapted"] == len(tgt)
    with pytest.raises(TrainingError, match="needs a 'speaker' column"):
        _fit((src.drop(columns=["speaker"]), tgt, feats), {"input_norm": "per-speaker"})


def test_levers_needing_target_rows_say_so(pair) -> None:
    src, _, feats = pair
    with pytest.raises(TrainingError, match="need\\(s\\) target rows"):
        fit(
            source=src,
            target=None,
            features=feats,
            method="source-only",
            emotion="angry",
            config={**LEVER_TINY, "thresholds": "parity"},
            progress=False,
        )


def test_layer_weighting_is_learned_over_several_layers(pair_factory) -> None:
    src, tgt, feats = pair_factory(seed=3, n_source=120, n_target=60, dim=8, n_layers=3)
    model = _fit((src, tgt, feats), {"input_norm": "per-speaker"}, method="source-only")
    w = np.asarray(model.history["layer_weights"])
    assert w.shape == (3,) and abs(w.sum() - 1.0) < 1e-6


def test_run_yaml_training_block_takes_the_lever_options(tmp_path) -> None:
    from fairser.training.run import load_run_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "source: ravdess:/r\ntarget: casia:/c\nmethod: pa\ntraining:\n"
        "  input_norm: per-speaker\n  erase: qleace\n  erase_on: inputs\n"
        "  thresholds: parity\n  selection: target-parity\n  selection_weight: 0.5\n",
        encoding="utf-8",
    )
    t = load_run_config(path).training
    assert (t.input_norm, t.erase, t.erase_on, t.thresholds, t.selection) == (
        "per-speaker",
        "qleace",
        "inputs",
        "parity",
        "target-parity",
    )
    path.write_text("source: ravdess:/r\ntraining:\n  thresholds: equal\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run.yaml:3: training.thresholds"):
        load_run_config(path)


def test_input_leace_after_per_speaker_norm_is_the_identity_and_says_so(pair) -> None:
    # gender is constant within a speaker, so centring every speaker's frames leaves gender no
    # linear cross-covariance with them: LEACE has nothing to remove (measured on CASIA in
    # session 13: identical scores with and without it)
    with pytest.warns(UserWarning, match="input eraser is the identity here.*per-speaker"):
        model = _fit(pair, {"input_norm": "per-speaker", "erase": "leace", "erase_on": "inputs"})
    assert model.levers.input_eraser.rank == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="(?!erase_on inputs)")
        model = _fit(pair, {"input_norm": "per-corpus", "erase": "leace", "erase_on": "inputs"})
    assert model.levers.input_eraser.rank == 1


def test_no_embedding_layer_fits_erases_and_round_trips(pair, tmp_path) -> None:
    """``model: {embed_dim: 0}``: the pooled projection is the shared embedding, levers and all."""
    src, tgt, feats = pair
    model = _fit(pair, {"model": {**LEVER_TINY["model"], "embed_dim": 0, "n_layers": 0,
                                  "positional": False},
                        "input_norm": "per-speaker", "erase": "leace", "thresholds": "parity"})
    d_model = LEVER_TINY["model"]["d_model"]
    assert model.net.embedding_dim == d_model
    out = _quiet_outputs(model, tgt, feats)
    assert out.embedding.shape == (len(tgt), d_model)
    g = tgt["gender"].to_numpy(dtype=object)
    assert _probe(out.embedding, g) < 0.65
    model.save(tmp_path / "m")
    back = FittedModel.load(tmp_path / "m")
    np.testing.assert_array_equal(_quiet_outputs(back, tgt, feats).proba, out.proba)
    with pytest.raises(Exception, match="embed_dim=1"):
        TrainConfig(model={"embed_dim": 1})
