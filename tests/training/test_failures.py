"""Failures are one-line errors: diverging fits, non-finite scores, damaged model folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fairser.errors import ConfigError, TrainingError
from fairser.training import FittedModel, fit
from fairser.training.steps import Runtime, evaluate


def _fit(small_pair, cfg, method="pa", **kw):
    src, tgt, feats = small_pair
    return fit(
        source=src,
        target=tgt,
        features=feats,
        method=method,
        emotion="angry",
        config=cfg,
        seed=0,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize(
    ("override", "where", "key"),
    [
        ({"lr": 1e6}, "stage 1, epoch 1", "training.lr = 1e+06"),
        ({"stage2_lr": 1e6}, "stage 2, epoch 1", "training.stage2_lr = 1e+06"),
    ],
)
def test_a_diverging_fit_stops_naming_stage_epoch_and_fix(
    small_pair, fast_config, override, where, key
) -> None:
    with pytest.raises(TrainingError) as info:
        _fit(small_pair, {**fast_config, **override})
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(where) and "not finite" in msg and key in msg
    assert "learning rate" in msg


def test_non_finite_scores_are_errors_not_zeros(small_pair, fast_config, tmp_path) -> None:
    src, tgt, feats = small_pair
    m = _fit(small_pair, {**fast_config, "stage1_epochs": 1, "stage2_epochs": 1})
    with torch.no_grad():
        m.net.emotion.out.bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"non-finite scores for \d+ of 120 rows"):
        m.predict(tgt, feats)
    # the dev evaluation of the loop says which stage and epoch
    from fairser.training.prepare import prepare_fit

    prep = prepare_fit(
        source=src, target=tgt, features=feats, method="pa", emotion="angry", config=fast_config
    )
    rt = Runtime()
    with pytest.raises(TrainingError, match=r"^stage 2, epoch 3: .*not finite.*lower the"):
        evaluate(
            m.net,
            prep.data.feeds(rt),
            y=prep.data.dev.y,
            binary=True,
            cfg=prep.config,
            rt=rt,
            where="stage 2, epoch 3",
        )


def test_load_refuses_damaged_folders_in_one_line(small_pair, fast_config, tmp_path) -> None:
    src, tgt, feats = small_pair
    m = _fit(small_pair, {**fast_config, "stage1_epochs": 1, "stage2_epochs": 1})
    good = m.save(tmp_path / "good")
    meta = json.loads((good / "model.json").read_text())
    assert meta["device"] == "cpu" and meta["precision"] == "fp32" and meta["world_size"] == 1

    def damaged(name, edit):
        d = tmp_path / name
        d.mkdir()
        for f in good.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        edit(d)
        return d

    cases = {
        "empty-meta": lambda d: (d / "model.json").write_text("{}"),
        "list-meta": lambda d: (d / "model.json").write_text("[1, 2]"),
        "bad-spec": lambda d: (d / "model.json").write_text(
            json.dumps({**meta, "spec": {**meta["spec"], "in_dim": 3}})
        ),
        "unknown-spec-key": lambda d: (d / "model.json").write_text(
            json.dumps({**meta, "spec": {**meta["spec"], "colour": 1}})
        ),
        "truncated-weights": lambda d: (d / "model.safetensors").write_bytes(
            (good / "model.safetensors").read_bytes()[:100]
        ),
        "no-weights": lambda d: (d / "model.safetensors").unlink(),
        "no-history": lambda d: (d / "history.json").unlink(),
        "bad-config": lambda d: (d / "model.json").write_text(
            json.dumps({**meta, "config": {**meta["config"], "lr": "fast"}})
        ),
    }
    for name, edit in cases.items():
        with pytest.raises(TrainingError) as info:
            FittedModel.load(damaged(name, edit)).predict(tgt, feats)
        msg = str(info.value)
        assert "\n" not in msg and name in msg, (name, msg)
    back = FittedModel.load(good, device="cpu")
    assert np.array_equal(back.predict_proba(tgt, feats), m.predict_proba(tgt, feats))
    with pytest.raises(ConfigError, match="device 'gpu'"):
        FittedModel.load(good, device="gpu")


def test_device_and_precision_options(small_pair, fast_config) -> None:
    cfg = {**fast_config, "stage1_epochs": 1, "stage2_epochs": 1}
    with pytest.raises(ConfigError, match="key 'device'"):
        _fit(small_pair, {**cfg, "device": "tpu"})
    with pytest.raises(ConfigError, match="key 'precision'"):
        _fit(small_pair, {**cfg, "precision": "fp8"})
    # bf16 autocast on CPU: the same path, recorded in the metadata, scores still finite
    m = _fit(small_pair, cfg, device="cpu", precision="bf16")
    assert m.meta["device"] == "cpu" and m.meta["precision"] == "bf16"
    assert m.config.precision == "bf16" and m.config.device == "cpu"
    p = m.predict_proba(small_pair[1], small_pair[2])
    assert np.isfinite(p).all()
    # fp16 on CPU runs as fp32 (no fast fp16 kernels) and says so
    m16 = _fit(small_pair, cfg, device="cpu", precision="fp16")
    assert m16.meta["precision"] == "fp32" and m16.meta["precision_requested"] == "fp16"
