"""Log-mel spectrogram frontend (torch STFT, no torchaudio) and Whisper's exact log-mel input.

:func:`whisper_log_mel` reproduces ``WhisperFeatureExtractor`` (80 or 128 Slaney mel bins,
``n_fft=400``, hop 160, ``log10``, dynamic range clipped to 8, then ``(x + 4) / 4``) but only for
the signal's own length: the 30-second zero padding is replaced by just enough zeros (``n_fft/2``)
that every returned frame equals the corresponding frame of the padded computation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
from pydantic import Field
from transformers.audio_utils import mel_filter_bank

from fairser.errors import ConfigError
from fairser.features._options import FrontendOptions, parse_options
from fairser.features.base import Frontend, LayerSpec, normalize_layers

__all__ = ["LogMelFrontend", "LogMelOptions", "whisper_log_mel", "mel_filters"]


@lru_cache(maxsize=8)
def mel_filters(n_fft: int, n_mels: int, sample_rate: int, f_min: float,
                f_max: float) -> np.ndarray:
    """Slaney-normalised mel filter bank of shape ``(n_fft // 2 + 1, n_mels)`` (float32).

    The result is cached per argument tuple (a pure function of its arguments) and returned
    read-only so no caller can mutate the shared copy.
    """
    fb = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=f_min,
        max_frequency=f_max, sampling_rate=sample_rate, norm="slaney", mel_scale="slaney",
    ).astype(np.float32)
    fb.setflags(write=False)
    return fb


def _power_mel(signal: np.ndarray, *, n_fft: int, hop: int, n_mels: int, sample_rate: int,
               f_min: float, f_max: float, pad_end: int) -> torch.Tensor:
    wav = torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))
    if pad_end:
        wav = torch.nn.functional.pad(wav, (0, pad_end))
    window = torch.hann_window(n_fft)
    stft = torch.stft(wav, n_fft, hop, window=window, return_complex=True)
    power = stft.abs() ** 2
    fb = torch.from_numpy(mel_filters(n_fft, n_mels, sample_rate, f_min, f_max).copy())
    return fb.T @ power  # (n_mels, frames)


def whisper_log_mel(signal: np.ndarray, *, n_mels: int = 80) -> torch.Tensor:
    """Whisper's log-mel input of a 16 kHz signal, without padding to 30 seconds.

    Parameters
    ----------
    signal : numpy.ndarray
        1-D float32 signal at 16 kHz (at most 30 s for one encoder window).
    n_mels : int, default=80
        80 for Whisper up to v3, 128 for large-v3.

    Returns
    -------
    torch.Tensor
        ``(n_mels, len(signal) // 160)`` float32; at least one frame.
    """
    n_frames = max(1, len(signal) // 160)
    mel = _power_mel(signal, n_fft=400, hop=160, n_mels=n_mels, sample_rate=16000,
                     f_min=0.0, f_max=8000.0, pad_end=200)[:, :n_frames]
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


class LogMelOptions(FrontendOptions):
    """Options of the ``logmel`` frontend."""

    n_mels: int = Field(80, ge=8, le=256, description="Number of mel bands (feature dimension).")
    n_fft: int = Field(400, ge=64, le=8192, description="FFT size and Hann window length.")
    hop_length: int = Field(160, ge=1, le=8000, description="Hop between frames in samples.")
    f_min: float = Field(0.0, ge=0.0, description="Lowest mel band edge in Hz.")
    f_max: float = Field(8000.0, gt=0.0, description="Highest mel band edge in Hz (<= rate/2).")
    sample_rate: int = Field(16000, ge=4000, le=96000, description="Analysis sample rate in Hz.")
    floor: float = Field(1e-6, gt=0.0, description="Added to mel power before the natural log.")


class LogMelFrontend(Frontend):
    """Natural-log mel power spectrogram (``T`` at ``sample_rate / hop_length`` frames/s).

    Parameters
    ----------
    layers : int, list of int, "all" or None
        Only layer 0 exists; accepted for interface uniformity.
    cache_dir : object
        Unused (accepted like every frontend's factory).
    **options
        Fields of :class:`LogMelOptions`.
    """

    name = "logmel"
    batched = False
    version = 1

    def __init__(self, *, layers: LayerSpec = None, cache_dir: object = None,
                 **options: Any) -> None:
        self.options = parse_options(LogMelOptions, options, frontend=self.name)
        if self.options.f_max > self.options.sample_rate / 2:
            raise ConfigError(
                f"frontend logmel: f_max={self.options.f_max} exceeds half the sample rate "
                f"({self.options.sample_rate / 2}); lower f_max or raise sample_rate"
            )
        self.layers = normalize_layers(layers, 1, frontend=self.name)
        self.sample_rate = self.options.sample_rate
        self.frame_rate = self.options.sample_rate / self.options.hop_length

    @property
    def n_layers(self) -> int:
        """One layer."""
        return 1

    @property
    def dim(self) -> int:
        """Number of mel bands."""
        return self.options.n_mels

    def min_samples(self) -> int:
        """Centred STFT frames reflect-pad by ``n_fft / 2``, which needs more samples than that."""
        return self.options.n_fft // 2 + 1

    def config(self) -> dict[str, Any]:
        """Options and algorithm version."""
        return {"frontend": self.name, "version": self.version, **self.options.model_dump()}

    def compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """``(1, T, n_mels)`` log-mel of each signal (``T = len // hop + 1``, centred frames)."""
        o = self.options
        out = []
        with torch.inference_mode():
            for sig in signals:
                mel = _power_mel(sig, n_fft=o.n_fft, hop=o.hop_length, n_mels=o.n_mels,
                                 sample_rate=o.sample_rate, f_min=o.f_min, f_max=o.f_max,
                                 pad_end=0)
                out.append(torch.log(mel + o.floor).T.numpy()[None].astype(np.float32))
        return out
