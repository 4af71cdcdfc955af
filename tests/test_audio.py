from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from fairser.audio import audio_info, load_audio
from fairser.errors import AudioError


def test_load_audio_downmixes_and_resamples(tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    path = tmp_path / "a.wav"
    sf.write(path, stereo, sr)
    x = load_audio(path, sample_rate=16000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 16000) <= 1
    assert np.max(np.abs(x)) == pytest.approx(0.25, abs=0.02)
    assert audio_info(path).duration_s == pytest.approx(1.0)


def test_load_audio_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: audio file not found"):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="bad.wav: unreadable audio"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: empty audio"):
        load_audio(empty)
