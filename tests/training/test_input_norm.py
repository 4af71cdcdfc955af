"""input_norm: per-corpus standardisation, its persistence and the unseen-corpus fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fairser.errors import TrainingError
from fairser.training import FittedModel, TrainConfig, fit
from fairser.training.data import make_split
from fairser.training.norm import CorpusStats
from fairser.training.rows import RowReader, split_arrays, streaming_stats

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
    # digest of the defaults recorded before input_norm and bucketing existed: the default
    # (bucketing off, the batches of that time) keeps it, so old workdirs stay valid;
    # bucketing on changes the batches, hence the digest
    old = TrainConfig(bucketing=False)
    assert old.digest() == "7b094bb316e5ea99"
    assert cfg.digest() == old.digest()
    assert TrainConfig(bucketing=True).digest() != old.digest()
    # where the same computation runs does not change the digest
    assert old.model_copy(update={"device": "cpu", "num_workers": 3}).digest() == old.digest()
    assert TrainConfig(bucketing=False, precision="bf16").digest() != old.digest()
    assert TrainConfig(input_norm="per-corpus").digest() != cfg.digest()
    with pytest.raises(ValueError):
        TrainConfig(input_norm="per-utterance")


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
    split = make_split(
        tgt,
        feats,
        labels=None,
        attribute="gender",
        groups=("F", "M"),
        frame_stride=fast_config["frame_stride"],
        max_frames=96,
        what="t",
    )
    reader = RowReader(feats, fast_config["frame_stride"], 96)
    mean, std = streaming_stats(split_arrays(reader, split), feats.n_layers, feats.dim)
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


def test_corpus_stats_normalise_each_row_with_its_corpus(small_pair) -> None:
    rng = np.random.default_rng(0)
    arrays, rows = {}, []
    for corpus, (scale, offset) in {"a": (4.0, 7.0), "b": (0.5, -3.0)}.items():
        for i in range(3):
            t = 5 if i else 3
            arrays[f"{corpus}/u{i}"] = (rng.normal(size=(2, t, 3)) * scale + offset).astype(
                np.float16
            )
            rows.append({"corpus": corpus, "utt_id": f"u{i}"})
    feats = type(small_pair[2])(arrays, n_layers=2, dim=3)  # the dict-backed FakeFeatures
    manifest = pd.DataFrame(rows)
    split = make_split(
        manifest,
        feats,
        labels=None,
        attribute="gender",
        groups=(),
        frame_stride=1,
        max_frames=96,
        what="t",
    )
    base = RowReader(feats, 1, 96)
    stats = CorpusStats.from_splits(
        base, [split], fallback=(torch.zeros(2, 3), torch.ones(2, 3)), min_rows=1
    )
    assert stats.corpora == ("a", "b")
    reader = stats.reader(base, split, what="test")
    for name in ("a", "b"):
        pairs = zip(split.keys, split.corpora, strict=True)
        z = np.concatenate([reader.read(k, c) for k, c in pairs if c == name], axis=1)
        assert z.dtype == np.float16  # stored float16 stays float16
        real = z.astype(np.float64)
        assert np.allclose(real.mean(1), 0.0, atol=2e-3)
        assert np.allclose(real.std(1), 1.0, atol=5e-3)
    with pytest.raises(TrainingError, match="NaN or inf"):
        arrays["a/u0"][0, 0, 0] = np.nan
        base.read("a/u0", "a")
