"""fairser.audio: decoding, header reads and the header and sample checks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from fairser.audio import audio_info, check_audio, load_audio
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


# ------------------------------------------------------------- header checks (always run)


def _tone(path, seconds=1.0, sr=16000, amp=0.3, subtype="PCM_16", fmt=None):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr,
             subtype=subtype, format=fmt)
    return path


def _kind(path) -> tuple[str, str]:
    with pytest.raises(AudioError) as err:
        audio_info(path)
    assert "\n" not in str(err.value) and str(err.value).startswith(str(path))
    return err.value.kind, err.value.reason


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8"])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_header_read_directly_matches_libsndfile(tmp_path, subtype, channels):
    path = tmp_path / "a.wav"
    sf.write(str(path), np.zeros((2205, channels)) + 0.1, 22050, subtype=subtype)
    ref = sf.info(str(path))
    got = audio_info(path)
    assert (got.sample_rate, got.channels, got.frames, got.subtype) == \
        (ref.samplerate, ref.channels, ref.frames, ref.subtype)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_flac_header_read_directly_and_by_content(tmp_path, subtype):
    path = _tone(tmp_path / "a.flac", seconds=1.3, sr=44100, subtype=subtype)
    ref = sf.info(str(path))
    got = audio_info(path)
    assert (got.sample_rate, got.channels, got.frames, got.subtype) == \
        (ref.samplerate, ref.channels, ref.frames, ref.subtype)
    disguised = tmp_path / "b.wav"  # FLAC bytes under a .wav name: told by content
    disguised.write_bytes(path.read_bytes())
    assert audio_info(disguised) == got


def test_truncated_wav_is_caught_from_the_header(tmp_path):
    full = _tone(tmp_path / "full.wav", seconds=2.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert len(sf.read(str(cut))[0]) < 16000  # libsndfile alone decodes half and says nothing
    kind, reason = _kind(cut)
    assert kind == "truncated-audio"
    assert reason.startswith("truncated audio: the file holds 0.999 s of the 2.000 s its "
                             "header declares; replace it with a complete copy")
    with pytest.raises(AudioError, match="cut.wav: truncated audio"):
        load_audio(cut)


def test_truncated_flac_is_caught(tmp_path):
    rng = np.random.default_rng(0)
    full = tmp_path / "full.flac"
    sf.write(str(full), 0.2 * rng.standard_normal(48000), 16000)
    data = full.read_bytes()
    half = tmp_path / "half.flac"
    half.write_bytes(data[: len(data) // 2])
    kind, reason = _kind(half)  # the frames present end long before the header's length
    assert kind == "truncated-audio" and "ends before its last frame" in reason
    tail = tmp_path / "tail.flac"
    tail.write_bytes(data[:-200])  # cut inside the last frame: only decoding can tell
    assert audio_info(tail).frames == 48000
    (found_kind, found), = check_audio(tail)
    assert found_kind == "truncated-audio" and found.startswith("truncated or corrupt audio")
    with pytest.raises(AudioError) as err:
        load_audio(tail)
    assert err.value.kind == "truncated-audio" and "re-encode" in str(err.value)


def test_empty_unsupported_and_link_problems(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert _kind(empty) == ("unreadable-audio", "unreadable audio: empty file (0 bytes); "
                            "replace it with the original recording or remove it")
    m4a = tmp_path / "a.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    kind, reason = _kind(m4a)
    assert kind == "unsupported-audio" and "convert it to FLAC or WAV" in reason
    broken = tmp_path / "broken.wav"
    broken.symlink_to(tmp_path / "gone.wav")
    kind, reason = _kind(broken)
    assert kind == "broken-link" and reason.startswith(f"broken symbolic link to {tmp_path}")
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    assert _kind(tmp_path / "a.wav")[0] == "broken-link"
    assert "loop" in _kind(tmp_path / "a.wav")[1]
    assert _kind(tmp_path / "none.wav")[0] == "missing-audio"


def test_permission_denied_says_permission(tmp_path, monkeypatch):
    import fairser.audio as audio

    path = _tone(tmp_path / "locked.wav")

    def deny(p):
        raise PermissionError(13, "Permission denied", p)

    monkeypatch.setattr(audio, "_open", deny)
    kind, reason = _kind(path)
    assert kind == "unreadable-audio"
    assert reason == f"unreadable audio: permission denied; make it readable (chmod a+r {path})"
    assert "re-encode" not in reason


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_permission_denied_on_a_real_file(tmp_path):
    path = _tone(tmp_path / "locked.wav")
    path.chmod(0)
    try:
        kind, reason = _kind(path)
    finally:
        path.chmod(0o644)
    assert kind == "unreadable-audio" and "permission denied" in reason


# ------------------------------------------------------- sample checks (check_audio)


def test_clean_audio_has_no_findings(tmp_path):
    assert check_audio(_tone(tmp_path / "ok.flac", amp=0.5)) == []


@pytest.mark.parametrize(
    ("signal", "subtype", "kind", "words"),
    [
        (np.zeros(16000), "PCM_16", "silent-audio", "every sample zero"),
        (np.full(16000, 2e-4), "PCM_16", "silent-audio", "peak -75 dBFS"),
        (np.clip(3 * np.sin(np.arange(16000) / 5), -1, 1), "PCM_16", "clipped-audio",
         "% of the samples at full scale"),
        (2.5 * np.sin(np.arange(16000) / 5), "FLOAT", "out-of-range-audio", "beyond +-1"),
        (np.where(np.arange(16000) == 7, np.nan, 0.1), "FLOAT", "out-of-range-audio",
         "NaN or infinite"),
    ],
)
def test_suspicious_samples_are_flagged(tmp_path, signal, subtype, kind, words):
    path = tmp_path / "x.wav"
    sf.write(str(path), signal.astype(np.float64), 16000, subtype=subtype)
    found = check_audio(path)
    assert [k for k, _ in found] == [kind] and words in found[0][1]


def test_a_loud_peak_is_not_clipping(tmp_path):
    x = 0.3 * np.sin(np.arange(48000) / 7)
    x[100:110] = 1.0  # ten samples at full scale of 48000: well under 0.1 %
    path = tmp_path / "peak.wav"
    sf.write(str(path), x, 16000)
    assert check_audio(path) == []
