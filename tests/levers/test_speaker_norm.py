"""SpeakerNorm: per-speaker statistics over all frames, fallback order, strength, round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fairser.levers import LeverError, SpeakerNorm, load_lever, save_lever


def _corpus(seed: int = 0, n_spk: int = 6, utts: int = 4, layers: int = 2, dim: int = 3):
    """Frames whose speakers differ in offset and scale."""
    rng = np.random.default_rng(seed)
    items, speakers = [], []
    for s in range(n_spk):
        offset, scale = rng.normal(size=(layers, 1, dim)) * 5, rng.uniform(0.5, 3.0)
        for _ in range(utts):
            t = int(rng.integers(3, 9))
            items.append(offset + scale * rng.normal(size=(layers, t, dim)))
            speakers.append(f"s{s}")
    return items, speakers


def test_each_speaker_is_standardised_over_all_its_frames() -> None:
    items, speakers = _corpus()
    out = SpeakerNorm().fit(items, speakers=speakers).transform(items, speakers=speakers)
    assert [o.shape for o in out] == [i.shape for i in items]
    for s in set(speakers):
        frames = np.concatenate([o for o, k in zip(out, speakers, strict=True) if k == s],
                                axis=1)
        np.testing.assert_allclose(frames.mean(axis=1), 0.0, atol=1e-5)
        np.testing.assert_allclose(frames.std(axis=1), 1.0, atol=1e-4)


def test_two_dimensional_items_and_pooled_rows_agree_with_frames() -> None:
    items, speakers = _corpus(layers=1)
    flat = [i[0] for i in items]  # (T, D)
    norm = SpeakerNorm().fit(flat, speakers=speakers)
    frames = norm.transform(flat, speakers=speakers)
    pooled = norm.transform([f.mean(axis=0, keepdims=True) for f in flat], speakers=speakers)
    np.testing.assert_allclose(np.stack([f.mean(axis=0) for f in frames]),
                               np.concatenate(pooled), atol=1e-5)


def test_fallback_order_and_report() -> None:
    items, speakers = _corpus(n_spk=4, utts=4)
    speakers[-2:] = ["rare", "rare"]  # 2 utterances < min_utterances=3: no own statistics
    corpora = ["a"] * len(items)
    norm = SpeakerNorm(min_utterances=3).fit(items, speakers=speakers, corpora=corpora)
    assert "a/rare" not in norm.speaker_keys
    new_items, _ = _corpus(seed=1, n_spk=2, utts=3)
    spk = speakers[:4] + ["rare"] * 2 + ["new"] * 3 + ["one"] * 1
    corp = ["a"] * 9 + ["elsewhere"]
    batch = items[:4] + items[-2:] + new_items[:3] + new_items[3:4]
    norm.transform(batch, speakers=spk, corpora=corp)
    rep = norm.last_report
    assert rep.counts == {"speaker": 4, "adapted": 3, "corpus": 2, "global": 1}
    assert rep.fell_back == {"a/rare": (2, "corpus"), "a/new": (3, "adapted"),
                             "elsewhere/one": (1, "global")}
    assert "3 adapted" in rep.summary()
    # without adaptation the unknown speaker falls back to its corpus
    norm.adapt = False
    norm.transform(batch, speakers=spk, corpora=corp)
    assert norm.last_report.fell_back["a/new"] == (3, "corpus")


def test_speaker_ids_are_per_corpus() -> None:
    items, speakers = _corpus(n_spk=2, utts=3)
    corpora = ["x"] * 3 + ["y"] * 3
    norm = SpeakerNorm().fit(items, speakers=["1"] * 6, corpora=corpora)
    assert norm.speaker_keys == ["x/1", "y/1"]


def test_strength_interpolates_from_corpus_to_speaker_statistics() -> None:
    items, speakers = _corpus()
    corpora = ["c"] * len(items)
    full = SpeakerNorm().fit(items, speakers=speakers, corpora=corpora)
    off = SpeakerNorm(strength=0.0).fit(items, speakers=speakers, corpora=corpora)
    half = SpeakerNorm(strength=0.5).fit(items, speakers=speakers, corpora=corpora)
    m0, s0 = off.row_stats(None, speakers=speakers, corpora=corpora)
    m1, s1 = full.row_stats(None, speakers=speakers, corpora=corpora)
    mh, sh = half.row_stats(None, speakers=speakers, corpora=corpora)
    np.testing.assert_allclose(m0, np.broadcast_to(m0[0], m0.shape))  # one corpus: same stats
    np.testing.assert_allclose(mh, (m0 + m1) / 2)
    np.testing.assert_allclose(sh, np.sqrt(s0 * s1))
    with pytest.raises(LeverError, match=r"strength=1.5 must be in \[0, 1\]"):
        SpeakerNorm(strength=1.5)


def test_round_trip_json_and_safetensors(tmp_path) -> None:
    items, speakers = _corpus()
    norm = SpeakerNorm(min_utterances=2).fit(items, speakers=speakers, corpora=["c"] * 24)
    want = norm.transform(items, speakers=speakers, corpora=["c"] * 24)
    again = SpeakerNorm.from_dict(json.loads(json.dumps(norm.to_dict(lists=True))))
    loaded = load_lever(save_lever(norm, tmp_path / "norm.safetensors"))
    for lever in (again, loaded):
        assert isinstance(lever, SpeakerNorm) and lever.min_utterances == 2
        got = lever.transform(items, speakers=speakers, corpora=["c"] * 24)
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_input() -> None:
    items, speakers = _corpus(n_spk=2, utts=2)
    with pytest.raises(LeverError, match="not fitted"):
        SpeakerNorm().transform(items, speakers=speakers)
    with pytest.raises(LeverError, match="speakers has 3 values for 4 items"):
        SpeakerNorm().fit(items, speakers=speakers[:3])
    with pytest.raises(LeverError, match=r"item 0 has shape \(4,\)"):
        SpeakerNorm().fit([np.zeros(4)], speakers=["a"])
    with pytest.raises(LeverError, match="different"):
        SpeakerNorm().fit([np.zeros((2, 3)), np.zeros((2, 4))], speakers=["a", "b"])
    with pytest.raises(LeverError, match="min_utterances=0"):
        SpeakerNorm(min_utterances=0)
    with pytest.raises(LeverError, match="not a serialised 'speaker-norm' lever"):
        SpeakerNorm.from_dict({"kind": "gender-eraser"})
