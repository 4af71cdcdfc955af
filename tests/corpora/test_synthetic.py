"""The synthetic pair: real espeak-ng audio, bias as designed, deterministic, cached."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
import soundfile as sf

from fairser.corpora import load_corpus, synthetic, validate_manifest
from fairser.corpora.synthetic import SynthConfig, generate_pair, pair_dir
from fairser.errors import ConfigError

SMALL = SynthConfig(utterances=48, speakers_per_gender=3)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    t0 = time.perf_counter()
    src, tgt = generate_pair(root, seed=0)
    return root, src, tgt, time.perf_counter() - t0


def test_default_pair_shape_bias_and_speed(pair):
    root, src, tgt, seconds = pair
    assert seconds < 90.0  # about 10 s on an idle laptop core; generous for loaded CI machines
    for df, lang, corpus in ((src, "en", "synth-en"), (tgt, "zh", "synth-zh")):
        validate_manifest(df)
        assert len(df) == 320 and (df["language"] == lang).all() and (df["corpus"] == corpus).all()
        assert df.groupby("gender")["speaker"].nunique().to_dict() == {"F": 6, "M": 6}
        # official speaker-disjoint splits, both genders in each
        assert df.groupby("speaker")["split"].nunique().max() == 1
        per_split = df.drop_duplicates("speaker").groupby("split")["gender"].nunique()
        assert per_split.to_dict() == {"dev": 2, "test": 2, "train": 2}
        assert df["duration_s"].between(0.5, 4.0).all()
    src_counts = src.groupby(["emotion", "gender"]).size().unstack()
    assert src_counts.loc["angry", "M"] == 64 and src_counts.loc["angry", "F"] == 16
    assert src_counts.loc["happy", "F"] == 64 and src_counts.loc["sad", "F"] == 64
    assert src_counts.loc["neutral"].tolist() == [40, 40]
    assert tgt.groupby(["emotion", "gender"]).size().eq(40).all()


def test_audio_is_speech_like_and_prosody_differs(pair):
    _, src, _, _ = pair
    stats = {}
    for emo, group in src.groupby("emotion"):
        rms, dur = [], []
        for path in group["path"].head(12):
            x, sr = sf.read(path)
            assert sr == 16000 and x.ndim == 1 and np.abs(x).max() < 1.0
            rms.append(np.sqrt(np.mean(x**2)))
            dur.append(len(x) / sr)
        stats[emo] = (np.mean(rms), np.mean(dur))
    assert stats["angry"][0] > stats["neutral"][0] > stats["sad"][0]  # loudness rule
    assert stats["sad"][1] > stats["angry"][1]  # sad is slow, angry fast


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "synthetic"
    return root, generate_pair(root, seed=0, config=SMALL)[0]


def _digest(df):
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in df["path"]]


def test_cached_and_deterministic(pair, small, tmp_path, monkeypatch):
    root, src, _, _ = pair
    with monkeypatch.context() as m:
        m.setattr(synthetic, "_run_workers", lambda *a, **k: pytest.fail("regenerated"))
        again, _ = generate_pair(root, seed=0)  # reused, not regenerated
    assert again.equals(src)
    small_root, small_src = small
    twin, _ = generate_pair(tmp_path / "twin", seed=0, config=SMALL)  # fresh folder, same seed
    assert _digest(twin) == _digest(small_src)
    assert twin.drop(columns="path").equals(small_src.drop(columns="path"))
    assert pair_dir(small_root, seed=0, config=SMALL).is_dir()
    assert not list(small_root.glob(".tmp-*"))  # no half-written folders left


def test_seed_changes_the_plan():
    from fairser.corpora._synth_render import _plan

    a = _plan("en", "en", SMALL, 0, biased=True)
    assert a == _plan("en", "en", SMALL, 0, biased=True)
    b = _plan("en", "en", SMALL, 1, biased=True)
    assert [(u.emotion, u.text_id, u.rate) for u in a] != [(u.emotion, u.text_id, u.rate)
                                                           for u in b]
    assert pair_dir("/x", seed=0, config=SMALL) != pair_dir("/x", seed=1, config=SMALL)


def test_specs_load_the_pair(pair):
    root, src, tgt, _ = pair
    assert load_corpus(f"synthetic-source:{root}").equals(src)
    assert load_corpus(f"synthetic-target:{root}").equals(tgt)


def test_default_root_is_the_cache(monkeypatch, small):
    small_root, small_src = small
    monkeypatch.setenv("FAIRSER_CACHE", str(small_root.parent))
    df = load_corpus("synthetic-source:", options={"utterances": 48, "speakers_per_gender": 3})
    assert df["path"].str.startswith(str(small_root)).all()
    assert df.equals(small_src)


def test_bad_config():
    with pytest.raises(ConfigError, match="speakers_per_gender=2 must be between 3 and 12"):
        SynthConfig(speakers_per_gender=2)
    with pytest.raises(ConfigError, match="bias=1.5"):
        SynthConfig(bias=1.5)


def _cheap_features(path: str) -> np.ndarray:
    x, _ = sf.read(path)
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    spec = np.abs(np.fft.rfft(frames * np.hanning(400), axis=1)) + 1e-8
    edges = [(2, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 201)]
    bands = np.log(np.stack([spec[:, a:b].mean(1) for a, b in edges], 1))
    energy = np.log((frames**2).mean(1) + 1e-10)
    voiced = energy > energy.max() - 4
    return np.r_[bands[voiced].mean(0), bands[voiced].std(0), energy[voiced].mean(),
                 energy[voiced].std(), voiced.mean(), len(x) / 16000]


def test_naive_model_learns_the_gender_shortcut(pair):
    """A plain classifier trained on the biased source over-predicts angry for target men."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, src, tgt, _ = pair
    train = src[src["split"] == "train"]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(np.stack([_cheap_features(p) for p in train["path"]]), train["emotion"])
    pred = clf.predict(np.stack([_cheap_features(p) for p in tgt["path"]]))
    assert balanced_accuracy_score(tgt["emotion"], pred) > 0.45  # learnable across languages
    angry = {g: float((pred[(tgt["gender"] == g).to_numpy()] == "angry").mean()) for g in "MF"}
    assert angry["M"] > angry["F"] + 0.08  # target is balanced: the gap is the learnt bias
