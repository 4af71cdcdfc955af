"""Fixtures of the feature tests: generated audio, manifests, damaged entries, tiny hf models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

MANIFEST_COLUMNS = ["corpus", "utt_id", "path", "speaker", "gender", "emotion", "split",
                    "language", "duration_s"]


def write_corpus(root: Path, durations: list[float], *, seed: int = 0, corpus: str = "syn",
                 sample_rate: int = 16000) -> pd.DataFrame:
    """Write one tone-plus-noise WAV per duration and return its manifest."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, dur in enumerate(durations):
        n = int(round(dur * sample_rate))
        t = np.arange(n) / sample_rate
        f0 = rng.uniform(100, 300)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        x = (x + 0.02 * rng.standard_normal(n)).astype(np.float32)
        path = root / f"utt{i:03d}.wav"
        sf.write(path, x, sample_rate)
        rows.append((corpus, f"utt{i:03d}", str(path), f"spk{i % 2}", "MF"[i % 2], "neutral",
                     "train", "en", n / sample_rate))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., pd.DataFrame]:
    """``make_corpus(durations, seed=0, name="audio")`` -> manifest of generated WAVs."""

    def make(durations: list[float], *, seed: int = 0, name: str = "audio",
             sample_rate: int = 16000) -> pd.DataFrame:
        return write_corpus(tmp_path / name, durations, seed=seed, sample_rate=sample_rate)

    return make


def _damage_entry(path: Path, kind: str) -> None:
    """Damage an (L, T, D) float16 store entry in one of the ways an entry can break."""
    arr = np.load(path)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "header":
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    elif kind == "trailing":
        path.write_bytes(path.read_bytes() + b"\0" * 16)
    elif kind == "layers":
        np.save(path, np.zeros((arr.shape[0] + 1, *arr.shape[1:]), np.float16))
    elif kind == "dim":
        np.save(path, np.zeros((*arr.shape[:2], arr.shape[2] + 1), np.float16))
    elif kind == "rank":
        np.save(path, arr[0])
    elif kind == "dtype":
        np.save(path, arr.astype(np.float32))
    elif kind == "nan":
        np.save(path, np.full_like(arr, np.nan))
    elif kind == "inf-last-frame":
        arr = arr.copy()
        arr[0, -1, 3] = np.inf
        np.save(path, arr)
    elif kind == "nan-unsampled":
        arr = arr.copy()
        arr[0, 7, 0] = np.nan  # not the first, middle or last frame: only a full check sees it
        np.save(path, arr)
    elif kind == "folder":
        path.unlink()
        path.mkdir()
    else:
        raise AssertionError(kind)


@pytest.fixture
def damage_entry() -> Callable[[Path, str], None]:
    """``damage_entry(path, kind)``: break a store entry (kinds: see the function above)."""
    return _damage_entry


TINY_HF = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
            conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 4, 4),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=12)


def _save_tiny_hf(folder: Path, kind: str) -> Path:
    """Save a tiny random transformers model of ``kind`` (and its feature extractor)."""
    import transformers as T

    torch.manual_seed(0)
    if kind == "whisper":
        cfg = T.WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2,
                              decoder_layers=1, decoder_attention_heads=2, encoder_ffn_dim=48,
                              decoder_ffn_dim=48, vocab_size=100, max_source_positions=1500,
                              max_target_positions=32, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, decoder_start_token_id=1)
        T.WhisperModel(cfg).save_pretrained(folder)
        T.WhisperFeatureExtractor().save_pretrained(folder)
        return folder
    config_cls, model_cls, norm = {
        "wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2Model, "group"),
        "wavlm": (T.WavLMConfig, T.WavLMModel, "layer"),
        "hubert": (T.HubertConfig, T.HubertModel, "group"),
        "data2vec": (T.Data2VecAudioConfig, T.Data2VecAudioModel, "layer"),
    }[kind]
    extra = {} if kind == "data2vec" else {"feat_extract_norm": norm}
    if kind == "wavlm":
        extra.update(num_buckets=8, max_bucket_distance=20)
    model_cls(config_cls(**TINY_HF, **extra)).save_pretrained(folder)
    T.Wav2Vec2FeatureExtractor(return_attention_mask=norm == "layer" or kind == "data2vec",
                               do_normalize=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def save_hf_model() -> Callable[[Path, str], Path]:
    """``save_hf_model(folder, kind)`` -> folder holding a tiny random ``kind`` model
    (``wav2vec2``, ``wavlm``, ``hubert``, ``data2vec`` or ``whisper``); no download."""
    return _save_tiny_hf
