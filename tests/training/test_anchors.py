"""Acoustic anchors: voiced high-energy frame detection, clustering, and PA with anchors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairser.training import fit
from fairser.training.anchors import anchor_assignments, frame_activity
from fairser.training.config import TrainConfig
from fairser.training.data import LabelSpace, make_split
from fairser.training.rows import RowReader, split_arrays, streaming_stats


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
    reader = RowReader(feats, cfg.frame_stride, cfg.max_frames)
    mean, std = streaming_stats(split_arrays(reader, s), feats.n_layers, feats.dim)
    tab_s, tab_t = anchor_assignments(
        [(s, src), (t, tgt)],
        reader,
        mean=mean,
        std=std,
        n_anchors=4,
        energy_quantile=0.5,
        seed=0,
    )
    a_s, a_t = tab_s.dense(), tab_t.dense()
    masks = []
    for split, a in ((s, a_s), (t, a_t)):
        assert a.shape == (len(split), int(split.lengths.max()))
        masks.append(torch.arange(a.shape[1])[None, :] < torch.from_numpy(split.lengths)[:, None])
    s_mask, t_mask = masks
    assert bool((a_s[~s_mask] == -1).all()) and bool((a_t[~t_mask] == -1).all())
    # a batch cut pads with -1 and keeps each row's own frames
    cut = tab_s.cut(np.array([1, 0]), 5)
    assert cut.shape == (2, 5) and torch.equal(cut[1], a_s[0, :5])
    for a, m in ((a_s, s_mask), (a_t, t_mask)):
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
