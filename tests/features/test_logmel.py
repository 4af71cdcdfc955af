"""Log-mel: Whisper's exact input without 30 s padding; the logmel frontend."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import WhisperFeatureExtractor

from fairser.errors import ConfigError
from fairser.features.logmel import LogMelFrontend, whisper_log_mel


@pytest.mark.parametrize("n", [16000, 48123, 160 * 999])
def test_whisper_log_mel_equals_padded_extractor_frames(n: int) -> None:
    rng = np.random.default_rng(n)
    t = np.arange(n) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)
    ref = WhisperFeatureExtractor()(x, sampling_rate=16000, return_tensors="np").input_features[0]
    mine = whisper_log_mel(x).numpy()
    assert mine.shape == (80, n // 160)
    np.testing.assert_allclose(mine, ref[:, : n // 160], atol=1e-5)


def test_logmel_frontend_shapes_and_options() -> None:
    x = np.sin(np.arange(16000) / 5).astype(np.float32)
    fe = LogMelFrontend(n_mels=64, hop_length=320)
    out = fe.compute([x])[0]
    assert out.shape == (1, 16000 // 320 + 1, 64) and out.dtype == np.float32
    assert fe.frame_rate == 50.0 and fe.dim == 64 and fe.min_samples() == 201
    assert LogMelFrontend().key() != fe.key() and LogMelFrontend().key() == LogMelFrontend().key()
    with pytest.raises(ConfigError, match="f_max"):
        LogMelFrontend(sample_rate=8000)
    with pytest.raises(ConfigError, match="n_mels"):
        LogMelFrontend(n_mels=2)
    with pytest.raises(ConfigError, match="out of range"):
        LogMelFrontend(layers=1)
