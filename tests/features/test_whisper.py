"""Whisper frontends: weight conversion, unpadded batched forward, windows, caching."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fairser.corpora._espeak import speak
from fairser.errors import ConfigError, FeatureError
from fairser.features import whisper as W
from fairser.features.entry import is_mapped
from fairser.features.logmel import whisper_log_mel

EN_TEXT = "Hello world, this is a test of the speech recognition system."


def chirp(n: int = 24000) -> np.ndarray:
    """Deterministic test input: a rising chirp plus a 1 kHz tone (no randomness)."""
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)
            + 0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


# Reference outputs of the converted encoders on chirp(): values at (frame, dim) positions
# (0,0) (10,7) (40,100) (74,300) of the first and last layer, then the layer's mean and std.
# Recorded once from this conversion after checking it transcribes espeak English verbatim
# (test_transcribes_english below); any change to parsing, mapping or the forward breaks them.
REFERENCE = {
    "whisper-base": {
        0: ([-0.1067, 1.089, 1.8913, -0.8238], 0.46652, 0.79257),
        6: ([-1.2652, -0.0855, -0.1277, 0.1392], -0.014, 1.39168),
    },
    "whisper-tiny.en": {
        0: ([-0.1287, 0.7524, 0.305, 0.8472], 0.51754, 0.79097),
        4: ([-0.8498, 0.7276, -1.4733, 0.1187], 0.00241, 1.11269),
    },
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whisper-cache")


@pytest.fixture(scope="module")
def base(cache: Path) -> W.WhisperFrontend:
    fe = W.WhisperFrontend("whisper-base", layers="all", cache_dir=cache)
    fe.load()
    return fe


@pytest.mark.parametrize("name", ["whisper-base", "whisper-tiny.en"])
def test_matches_stored_reference(name: str, cache: Path) -> None:
    fe = W.WhisperFrontend(name, layers="all", cache_dir=cache)
    out = fe.compute([chirp()])[0]
    assert out.shape == (fe.n_layers, 75, fe.dim)
    for layer, (values, mean, std) in REFERENCE[name].items():
        got = out[layer, [0, 10, 40, 74], [0, 7, 100, 300]]
        np.testing.assert_allclose(got, values, atol=2e-3)
        assert out[layer].mean() == pytest.approx(mean, abs=2e-3)
        assert out[layer].std() == pytest.approx(std, abs=2e-3)


def _greedy_transcribe(name: str, signal: np.ndarray, prompt: list[str]) -> str:
    from tokenizers import Tokenizer
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    model_ct2 = W.read_whisper_ct2(name, include_decoder=True)
    cfg = W.whisper_config(model_ct2, include_decoder=True)
    state = {f"model.{k}": v for k, v in W.whisper_state_dict(model_ct2,
                                                              include_decoder=True).items()}
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    with torch.device("meta"):  # no random init of 50k-token embeddings
        model = WhisperForConditionalGeneration(WhisperConfig(**cfg))
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    folder = Path(W._part_paths(W._weights(name))[-1]).parent
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    mel = whisper_log_mel(np.pad(signal, (0, 480000 - len(signal))))[None]  # stock 30 s input
    ids = [tok.token_to_id(t) for t in prompt]
    eot = tok.token_to_id("<|endoftext|>")
    with torch.inference_mode():
        enc = model.model.encoder(mel).last_hidden_state
        step, past = ids, None
        for _ in range(30):  # greedy decoding with the key/value cache
            out = model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([step]),
                        cache=past, use_cache=True)
            past = out.cache
            ids.append(int(out.logits[0, -1].argmax()))
            step = ids[-1:]
            if ids[-1] == eot:
                break
    return tok.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize(("name", "prompt"), [
    ("whisper-tiny.en", ["<|startoftranscript|>", "<|notimestamps|>"]),
    ("whisper-base", ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]),
])
def test_transcribes_english(name: str, prompt: list[str]) -> None:
    """The converted weights (encoder and decoder) transcribe espeak English correctly."""
    text = _greedy_transcribe(name, speak([(EN_TEXT, "en")])[0], prompt).lower()
    for word in ("world", "test", "speech", "recognition", "system"):
        assert word in text, text


def test_english_and_mandarin_separate_in_features(base: W.WhisperFrontend) -> None:
    en = ["The quick brown fox jumps over the lazy dog.", "I would like a cup of coffee.",
          "Tomorrow we will travel to the mountains."]
    zh = ["今天天气很好，我们去公园散步吧。", "我喜欢喝茶，不喜欢喝咖啡。",
          "明天我们要去北京旅行。"]
    signals = speak([(t, "en") for t in en] + [(t, "cmn") for t in zh])  # in a worker process
    feats = np.stack([f[-1].mean(axis=0) for f in base.compute(signals)])
    y = np.array([0] * len(en) + [1] * len(zh))
    for i in range(len(y)):  # leave-one-out nearest centroid
        others = np.arange(len(y)) != i
        d = [np.linalg.norm(feats[i] - feats[others & (y == c)].mean(axis=0)) for c in (0, 1)]
        assert int(np.argmin(d)) == y[i]


@pytest.fixture(scope="module")
def tiny(cache: Path) -> W.WhisperFrontend:
    fe = W.WhisperFrontend("whisper-tiny.en", layers="all", cache_dir=cache)
    fe.load()
    return fe


def test_unpadded_forward_equals_stock_forward_on_30s(tiny: W.WhisperFrontend) -> None:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(480000)).astype(np.float32)
    mel = whisper_log_mel(x)
    assert mel.shape == (80, 3000)
    ours = tiny._runner.run([mel], (4,))[0][0]
    with torch.inference_mode():
        stock = tiny._runner.encoder(mel[None]).last_hidden_state[0]
    torch.testing.assert_close(ours, stock, atol=1e-4, rtol=1e-4)


def test_batched_ragged_equals_one_by_one(base: W.WhisperFrontend) -> None:
    rng = np.random.default_rng(1)
    sigs = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 19360, 23999)]
    mels = [whisper_log_mel(s) for s in sigs]
    batched = base._runner.run(mels, (0, 3, 6))
    for mel, got in zip(mels, batched, strict=True):
        alone = base._runner.run([mel], (0, 3, 6))[0]
        assert got.shape == alone.shape == (3, (mel.shape[1] + 1) // 2, 512)
        # float32 summation order differs with the batch (one value of 94k measured 8e-4 off
        # at |x| 4.5); stored float16 resolves 5e-4 relative, so this is below what is kept.
        torch.testing.assert_close(got, alone, atol=1e-3, rtol=5e-4)


def test_layer_subset_and_long_audio_windows(cache: Path, tiny: W.WhisperFrontend) -> None:
    x = chirp(16000 * 31)  # 31 s: one full window plus one of 1 s
    two = W.WhisperFrontend("whisper-tiny.en", layers=[1, -1], cache_dir=cache)
    assert two.layers == (1, 4)
    out = two.compute([x])[0]
    assert out.shape == (2, 1500 + 50, 384)
    windows = tiny.compute([x[:480000], x[480000:]])
    assert [w.shape[1] for w in windows] == [1500, 50]
    np.testing.assert_allclose(out, np.concatenate(windows, axis=1)[[1, 4]], atol=1e-4)


def test_invalid_layers_and_options() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        W.WhisperFrontend("whisper-tiny.en", layers=5)
    with pytest.raises(ConfigError, match="allowed options"):
        W.WhisperFrontend("whisper-tiny.en", batch=3)
    with pytest.raises(FeatureError, match="unknown Whisper model"):
        W.WhisperFrontend("whisper-huge")


def test_converted_encoder_cache_is_reused(cache: Path, base: W.WhisperFrontend,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = next((cache / "models").glob("whisper-base-*/encoder.safetensors"))
    assert target.stat().st_size > 10_000_000

    def boom(*_a, **_k):
        raise AssertionError("the CTranslate2 file was parsed again")

    from fairser.features import whisper_weights

    monkeypatch.setattr(whisper_weights, "read_whisper_ct2", boom)
    enc = W.load_whisper_encoder("whisper-base", cache_dir=cache)
    torch.testing.assert_close(enc.conv1.weight, base._runner.encoder.conv1.weight)


def test_sha_mismatch_and_split_parts(tmp_path: Path) -> None:
    parts = W._part_paths(W._weights("whisper-tiny.en"))
    blob = parts[0].read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    # Split the one-file model at an arbitrary byte: parsing the two parts as a stream works.
    a, b = tmp_path / "p1", tmp_path / "p2"
    a.write_bytes(blob[:12_345_678])
    b.write_bytes(blob[12_345_678:])
    model = W.read_verified_ct2([a, b], sha)
    assert W.whisper_config(model)["encoder_layers"] == 4
    bad = bytearray(blob)
    bad[-100] ^= 0xFF
    b.write_bytes(bytes(bad[12_345_678:]))
    with pytest.raises(FeatureError, match="SHA-256"):
        W.read_verified_ct2([a, b], sha)
    b.write_bytes(blob[12_345_678:20_000_000])
    with pytest.raises(FeatureError, match="truncated"):
        W.read_verified_ct2([a, b], sha)


def test_bfloat16_compute_is_close_and_keyed_apart(cache: Path, tiny: W.WhisperFrontend) -> None:
    from fairser.features.base import Runtime

    bf = tiny.with_runtime(Runtime(precision="bf16"))
    assert bf.key() != tiny.key() and bf._runner is None  # its own store entries and state
    assert tiny.config()["compute_dtype"] == "float32"  # fp32 keys are those of earlier stores
    x = chirp(16000)
    got, ref = bf.compute([x])[0], tiny.compute([x])[0]
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.corrcoef(got[-1].ravel(), ref[-1].ravel())[0, 1] > 0.99
    assert np.abs(got - ref).max() > 1e-3  # bf16 really ran


def test_layer_subsets_are_served_from_all_layer_entries(cache: Path, make_corpus,
                                                         tmp_path: Path) -> None:
    from fairser.features import extract

    df = make_corpus([0.5, 0.8, 1.1])
    store = tmp_path / "store"
    full = extract(df.iloc[:2], "whisper-tiny.en", layers="all", cache_dir=store,
                   progress=False, options={})
    for layers, contiguous in (([1, 2], True), ([0, 4], False), (-1, True)):
        sub = extract(df, "whisper-tiny.en", layers=layers, cache_dir=store, progress=False)
        assert sub.stats.n_cached == 2 and sub.stats.n_computed == 1  # only the new file
        expected = full["syn/utt001"][list(sub.layers)]
        got = sub["syn/utt001"]
        assert is_mapped(got) == contiguous
        np.testing.assert_array_equal(got, expected)
        assert sub.shape("syn/utt001") == expected.shape
        assert sub["syn/utt002"].shape[0] == len(sub.layers)
