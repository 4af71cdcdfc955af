"""fit() and FittedModel on a small synthetic pair: API, persistence, determinism, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairser.errors import ConfigError, TrainingError
from fairser.training import FittedModel, TrainConfig, fit


def test_fit_pa_api_and_save_load(small_pair, fast_config, tmp_path) -> None:
    src, tgt, feats = small_pair
    m = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="angry",
        config=fast_config,
        seed=0,
        progress=False,
    )
    p = m.predict_proba(tgt, feats)
    assert p.shape == (len(tgt),) and np.all((p >= 0) & (p <= 1))
    assert set(np.unique(m.predict(tgt, feats))) <= {0, 1}
    assert m.embed(tgt, feats).shape == (len(tgt), 32)
    assert m.attribute_predict(tgt, feats) is None  # pa has no gender head
    assert m.classes == ("rest", "angry") and m.groups == ("F", "M")
    stages = {e["stage"] for e in m.history["epochs"]}
    assert stages == {1, 2}
    assert all("align" in e for e in m.history["epochs"] if e["stage"] == 2)
    assert m.history["n_rows"]["target"] == len(tgt)
    m.save(tmp_path / "m")
    back = FittedModel.load(tmp_path / "m")
    assert np.array_equal(back.predict_proba(tgt, feats), p)
    assert back.method == "pa" and back.history == json.loads(
        (tmp_path / "m" / "history.json").read_text()
    )


def test_source_only_uses_no_target_and_target_labels_never_read(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    m = fit(
        source=src,
        target=None,
        features=feats,
        method="source-only",
        emotion="angry",
        config=fast_config,
        seed=0,
        progress=False,
    )
    assert {e["stage"] for e in m.history["epochs"]} == {1}
    # PA trained on a target whose emotion labels are scrambled equals PA on the true target
    scrambled = tgt.assign(emotion=tgt["emotion"].sample(frac=1.0, random_state=1).to_numpy())
    a = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="angry",
        config=fast_config,
        seed=3,
        progress=False,
    )
    b = fit(
        source=src,
        target=scrambled,
        features=feats,
        method="pa",
        emotion="angry",
        config=fast_config,
        seed=3,
        progress=False,
    )
    assert np.array_equal(a.predict_proba(tgt, feats), b.predict_proba(tgt, feats))


def test_determinism_same_seed_same_outputs(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    kw = dict(
        source=src,
        target=tgt,
        features=feats,
        method="pa-cfa",
        emotion="angry",
        config=fast_config,
        progress=False,
    )
    a = fit(seed=7, **kw)
    b = fit(seed=7, **kw)
    c = fit(seed=8, **kw)
    assert np.array_equal(a.predict_proba(tgt, feats), b.predict_proba(tgt, feats))

    def losses(m):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in m.history["epochs"]]

    assert losses(a) == losses(b)
    assert not np.array_equal(a.predict_proba(tgt, feats), c.predict_proba(tgt, feats))


def test_multiclass_and_attentive_pooling(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    cfg = {
        **fast_config,
        "task": "multiclass",
        "model": {**fast_config["model"], "pooling": "attentive_stats"},
    }
    m = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa-adv",
        emotion=None,
        config=cfg,
        seed=0,
        progress=False,
    )
    p = m.predict_proba(tgt, feats)
    assert p.shape == (len(tgt), 4) and np.allclose(p.sum(1), 1.0)
    assert m.classes == ("angry", "happy", "sad", "neutral")
    att = m.attribute_predict(tgt, feats)
    assert att.shape == (len(tgt),) and set(att) <= {"F", "M"}
    y = m.encode_labels(tgt)
    assert (y >= 0).all() and (m.predict(tgt, feats) >= 0).all()


def test_pseudo_target_gender_reports_accuracy(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    m = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa-adv",
        emotion="angry",
        config={**fast_config, "target_gender": "pseudo"},
        seed=0,
        progress=False,
    )
    acc = m.history["pseudo_gender_accuracy"]
    assert 0.8 <= acc <= 1.0  # gender is strongly planted in the synthetic features


def test_errors_are_one_line_and_name_the_fix(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    kw = dict(source=src, target=tgt, features=feats, progress=False)
    with pytest.raises(ConfigError, match="key 'stage1_epoch': unknown key"):
        fit(method="pa", emotion="angry", config={"stage1_epoch": 3}, **kw)
    with pytest.raises(ConfigError, match="unknown method"):
        fit(method="cfa", emotion="angry", **kw)
    with pytest.raises(TrainingError, match="no rows of class 'contempt'"):
        fit(method="pa", emotion="contempt", config=fast_config, **kw)
    with pytest.raises(TrainingError, match="needs a target manifest"):
        fit(method="pa", emotion="angry", config=fast_config, **{**kw, "target": None})
    missing = src.copy()
    missing.loc[0, "utt_id"] = "nope"
    missing.loc[0, "split"] = "train"
    with pytest.raises(TrainingError, match=r"no features for manifest row corpus=src utt_id=nope"):
        fit(method="pa", emotion="angry", config=fast_config, **{**kw, "source": missing})
    bad = type(feats)(feats.arrays, n_layers=feats.n_layers, dim=feats.dim)
    bad.bad = pd.DataFrame(
        [{"corpus": "src", "utt_id": "nope", "path": "x.wav", "reason": "audio too short"}]
    )
    with pytest.raises(TrainingError, match=r"utt_id=nope \(x\) \(audio too short\); extract"):
        fit(
            method="pa",
            emotion="angry",
            config=fast_config,
            **{**kw, "source": missing.assign(path="x"), "features": bad},
        )
    with pytest.raises(TrainingError, match="split 'dev'"):
        fit(
            method="pa",
            emotion="angry",
            config=fast_config,
            **{**kw, "source": src.assign(split="train")},
        )
    for bad in ({"batch_size": 1, "task": "nope"}, fast_config):
        with pytest.raises((ConfigError, TrainingError)) as info:
            fit(method="pa", emotion="contempt", config=bad, **kw)
        assert "\n" not in str(info.value)


def test_config_validation() -> None:
    cfg = TrainConfig()
    assert cfg.resolved_stage2_lr == cfg.lr / 2
    with pytest.raises(ValueError, match="must divide"):
        TrainConfig.model_validate({"model": {"d_model": 30, "n_heads": 4}})
    assert TrainConfig().digest() == TrainConfig().digest() != TrainConfig(alpha=0.1).digest()


def test_stage1_identical_with_and_without_gender_head(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    kw = dict(
        source=src,
        target=tgt,
        features=feats,
        emotion="angry",
        config=fast_config,
        seed=4,
        progress=False,
    )
    pa = fit(method="pa", **kw).history["epochs"]
    adv = fit(method="pa-adv", **kw).history["epochs"]
    s1 = [{k: v for k, v in e.items() if k != "seconds"} for e in pa if e["stage"] == 1]
    a1 = [{k: v for k, v in e.items() if k != "seconds"} for e in adv if e["stage"] == 1]
    assert s1 == a1
    assert any("gc" in e for e in adv if e["stage"] == 2)


def test_protected_attribute_is_a_configurable_column(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair

    # a three-valued attribute: the gender head gets three outputs, predictions use its values
    def band(df):
        return df.assign(
            age_band=np.array(["young", "mid", "old"], dtype=object)[np.arange(len(df)) % 3]
        )

    m = fit(
        source=band(src),
        target=band(tgt),
        features=feats,
        method="pa-cfa",
        emotion="angry",
        config={**fast_config, "attribute": "age_band"},
        seed=0,
        progress=False,
    )
    assert m.attribute == "age_band" and m.groups == ("mid", "old", "young")
    assert m.net.gender.mlp.out.out_features == 3
    assert set(m.attribute_predict(tgt, feats)) <= {"mid", "old", "young"}
    with pytest.raises(TrainingError, match="needs the attribute column 'age'"):
        fit(
            source=src,
            target=tgt,
            features=feats,
            method="pa-adv",
            emotion="angry",
            config={**fast_config, "attribute": "age"},
            progress=False,
        )


def test_several_layers_are_mixed_by_learned_softmax_weights(pair_factory, fast_config) -> None:
    src, tgt, feats = pair_factory(seed=2, n_source=120, n_target=60, dim=8, n_layers=3)
    m = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="sad",
        config=fast_config,
        seed=0,
        progress=False,
    )
    w = np.array(m.history["layer_weights"])
    assert w.shape == (3,) and w.sum() == pytest.approx(1.0) and not np.allclose(w, 1 / 3)
    assert m.predict_proba(tgt, feats).shape == (len(tgt),)
    one_layer = type(feats)(feats.arrays, n_layers=1, dim=8)
    with pytest.raises(TrainingError, match="trained on 3 of width 8"):
        m.predict_proba(tgt, one_layer)


def test_large_float32_features_do_not_overflow(pair_factory, fast_config) -> None:
    src, tgt, feats = pair_factory(seed=3, n_source=120, n_target=60, dim=6)
    big = {k: v.astype(np.float32) * 1e5 for k, v in feats.arrays.items()}  # eGeMAPS-like scale
    big_feats = type(feats)(big, n_layers=1, dim=6)
    m = fit(
        source=src,
        target=tgt,
        features=big_feats,
        method="pa",
        emotion="angry",
        config=fast_config,
        seed=0,
        progress=False,
    )
    p = m.predict_proba(tgt, big_feats)
    assert np.isfinite(p).all() and np.isfinite(m.history["epochs"][-1]["loss"])
    assert m.history["epochs"][0]["dev_uar"] > 0.5
