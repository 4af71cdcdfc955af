"""Acoustic anchors: voiced high-energy frame detection, clustering, and PA with anchors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairser.training import fit
from fairser.training.anchors import anchor_assignments, frame_activity
from fairser.training.config import TrainConfig
from fairser.training.data import LabelSpace, feature_stats, make_split


def test_frame_activity_keeps_voiced_loud_frames_only() -> None:
    sr, hop = 16000, 320
    rng = np.random.default_rng(0)
    t = np.arange(int(0.3 * sr)) / sr
    parts = [
        np.zeros(int(0.2 * sr)),  # silence: 10 frames
        0.5 * np.sin(2 * np.pi * 150 * t),  # loud voiced: 15 frames
        0.3 * rng.uniform(-1, 1, int(0.2 * sr)),  # loud noise (unvoiced): 10 frames
        0.005 * np.sin(2 * np.pi * 150 * t),  # quiet voiced: 15 frames
    ]
    act = frame_activity(np.concatenate(parts).astype(np.float32), 50, hop=hop, energy_quantile=0.5)
    assert act[10:25].all()
    assert not act[:10].any() and not act[25:35].any() and not act[35:].any()


@pytest.mark.slow
def test_pa_with_anchors_on_synthetic_pair(tiny_synth) -> None:
    src, tgt, feats = tiny_synth
    cfg = TrainConfig.model_validate(
        {
            "alignment": "anchors",
            "n_anchors": 4,
            "model": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "embed_dim": 16},
            "stage1_epochs": 2,
            "stage2_epochs": 2,
            "batch_size": 16,
            "num_threads": 1,
        }
    )
    labels = LabelSpace("binary", ("rest", "angry"), "angry")
    kw = dict(
        attribute="gender",
        groups=("F", "M"),
        frame_stride=cfg.frame_stride,
        max_frames=cfg.max_frames,
    )
    s = make_split(src, feats, labels=labels, what="s", **kw)
    t = make_split(tgt, feats, labels=None, what="t", **kw)
    mean, std = feature_stats(s.x, s.mask)
    a_s, a_t = anchor_assignments(
        [(s, src), (t, tgt)],
        feats,
        mean=mean,
        std=std,
        n_anchors=4,
        frame_stride=cfg.frame_stride,
        max_frames=cfg.max_frames,
        energy_quantile=0.5,
        seed=0,
    )
    assert a_s.shape == s.mask.shape and a_t.shape == t.mask.shape
    assert bool((a_s[~s.mask] == -1).all()) and bool((a_t[~t.mask] == -1).all())
    for a, m in ((a_s, s.mask), (a_t, t.mask)):
        share = float((a[m] >= 0).float().mean())
        assert 0.05 < share < 0.9  # some but not all real frames are voiced and loud
    assert set(torch.unique(a_s[a_s >= 0]).tolist()) == {0, 1, 2, 3}
    assert set(torch.unique(a_t[a_t >= 0]).tolist()) & {0, 1, 2, 3}
    m = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="angry",
        config=cfg,
        seed=0,
        progress=False,
    )
    stage2 = [e for e in m.history["epochs"] if e["stage"] == 2]
    assert stage2 and all(e["align"] > 0 for e in stage2)
