"""input_norm: per-corpus standardisation, its persistence and the unseen-corpus fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fairser.errors import TrainingError
from fairser.training import FittedModel, TrainConfig, fit
from fairser.training.data import feature_stats, stack_features
from fairser.training.norm import CorpusStats

SCALE, OFFSET = 3.0, 5.0


@pytest.fixture(scope="module")
def shifted(small_pair):
    """The small pair in float32, plus 'tgt2': the target's rows with every feature
    multiplied by SCALE and shifted by OFFSET (a pure corpus-level affine shift)."""
    src, tgt, feats = small_pair
    arrays = {k: np.asarray(v, np.float32) for k, v in feats.arrays.items()}
    tgt2 = tgt.assign(corpus=pd.array(["tgt2"] * len(tgt), dtype="string"))
    for u in tgt["utt_id"]:
        arrays[f"tgt2/{u}"] = (arrays[f"tgt/{u}"].astype(np.float64) * SCALE + OFFSET).astype(
            np.float32
        )
    f32 = type(feats)(arrays, n_layers=feats.n_layers, dim=feats.dim)
    return src, tgt, tgt2, f32


def _fit(src, tgt, feats, cfg, *, method="pa", seed=0):
    return fit(
        source=src,
        target=tgt,
        features=feats,
        method=method,
        emotion="angry",
        config=cfg,
        seed=seed,
        progress=False,
    )


def test_default_is_source_and_digest_unchanged() -> None:
    cfg = TrainConfig()
    assert cfg.input_norm == "source" and cfg.input_norm_min_rows == 20
    # digest of the defaults recorded before the option existed: old workdirs stay valid
    assert cfg.digest() == "7b094bb316e5ea99"
    assert TrainConfig(input_norm="per-corpus").digest() != cfg.digest()
    with pytest.raises(ValueError):
        TrainConfig(input_norm="per-speaker")


def test_per_corpus_stats_make_an_affine_corpus_shift_invisible(
    shifted, fast_config, tmp_path
) -> None:
    src, tgt, tgt2, feats = shifted
    pc = _fit(src, tgt, feats, {**fast_config, "input_norm": "per-corpus"})
    assert pc.input_stats is not None and pc.input_stats.corpora == ("src", "tgt")
    # the network itself standardises nothing: its buffers are 0 / 1
    assert torch.equal(pc.net.project.mean, torch.zeros_like(pc.net.project.mean))
    assert torch.equal(pc.net.project.std, torch.ones_like(pc.net.project.std))
    # stored target stats are those of the target rows (strided frames, as trained on)
    x, mask, _ = stack_features(
        tgt, feats, frame_stride=fast_config["frame_stride"], max_frames=96, what="t"
    )
    mean, std = feature_stats(x, mask)
    assert torch.allclose(pc.input_stats.stats["tgt"][0], mean, atol=1e-5)
    assert torch.allclose(pc.input_stats.stats["tgt"][1], std, atol=1e-5)

    p = pc.predict_proba(tgt, feats)
    p2 = pc.predict_proba(tgt2, feats)  # unseen corpus, 120 rows >= 20: its own stats
    assert np.allclose(p, p2, atol=1e-4)
    assert np.allclose(pc.embed(tgt, feats), pc.embed(tgt2, feats), atol=1e-3)

    src_norm = _fit(src, tgt, feats, fast_config)
    assert src_norm.input_stats is None
    q, q2 = src_norm.predict_proba(tgt, feats), src_norm.predict_proba(tgt2, feats)
    assert np.abs(q - q2).max() > 0.05

    # a seen corpus uses its stored stats, however few rows are predicted (no warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        few = pc.predict_proba(tgt.iloc[:5], feats)
    assert np.allclose(few, p[:5], atol=1e-6)

    # save / load round trip keeps the statistics and the predictions exactly
    pc.save(tmp_path / "m")
    back = FittedModel.load(tmp_path / "m")
    assert back.input_stats is not None and back.input_stats.corpora == ("src", "tgt")
    assert np.array_equal(back.predict_proba(tgt, feats), p)
    assert np.array_equal(back.predict_proba(tgt2, feats), p2)
    (tmp_path / "m" / "input_norm.safetensors").unlink()
    with pytest.raises(TrainingError, match="input_norm.safetensors"):
        FittedModel.load(tmp_path / "m")

    # an unseen corpus with too few rows falls back to the source stats, warning once
    with pytest.warns(UserWarning, match="corpus 'tgt2'") as rec:
        fb = pc.predict_proba(tgt2.iloc[:5], feats)
    assert sum("tgt2" in str(w.message) for w in rec) == 1
    manual = CorpusStats({"tgt2": pc.input_stats.fallback}, pc.input_stats.fallback, min_rows=1)
    assert not np.allclose(fb, p2[:5], atol=1e-3)
    ref = FittedModel(pc.net, meta=pc.meta, history=pc.history, input_stats=manual)
    assert np.allclose(fb, ref.predict_proba(tgt2.iloc[:5], feats), atol=1e-6)

    # same seed, same model
    again = _fit(src, tgt, feats, {**fast_config, "input_norm": "per-corpus"})
    assert np.array_equal(again.predict_proba(tgt, feats), p)


def test_source_only_normalises_the_predicted_corpus_at_test_time(shifted, fast_config) -> None:
    src, tgt, tgt2, feats = shifted
    cfg = {**fast_config, "input_norm": "per-corpus", "input_norm_min_rows": 50}
    m = _fit(src, None, feats, cfg, method="source-only")
    assert m.input_stats.corpora == ("src",) and m.input_stats.min_rows == 50
    assert np.allclose(m.predict_proba(tgt, feats), m.predict_proba(tgt2, feats), atol=1e-4)
    with pytest.warns(UserWarning, match="input_norm_min_rows=50"):
        m.predict_proba(tgt.iloc[:49], feats)


def test_corpus_stats_normalise_each_row_with_its_corpus() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 5, 3, generator=g) * 4 + 7
    mask = torch.ones(6, 5, dtype=torch.bool)
    mask[0, 3:] = False
    corpora = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    stats = CorpusStats.from_splits(
        [(x, mask, corpora)], fallback=(torch.zeros(2, 3), torch.ones(2, 3)), min_rows=1
    )
    z = stats.normalise(x.half(), mask, corpora, what="test")
    assert z.dtype == torch.float16
    assert torch.all(z[0, :, 3:] == 0)  # padded frames stay zero
    for name in ("a", "b"):
        rows = torch.from_numpy(np.flatnonzero(corpora == name))
        real = z[rows].float().permute(0, 2, 1, 3)[mask[rows]]  # (frames, L, D)
        assert torch.allclose(real.mean(0), torch.zeros(2, 3), atol=2e-3)
        assert torch.allclose(real.std(0, unbiased=False), torch.ones(2, 3), atol=5e-3)
    with pytest.raises(TrainingError, match="one per row"):
        stats.normalise(x, mask, corpora[:3], what="test")
