"""Reading audio: the one place that decodes, downmixes, resamples and checks samples.

Only libsndfile (``soundfile``) and soxr are used; torchaudio is deliberately avoided.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from fairser.errors import AudioError

__all__ = ["AudioInfo", "audio_info", "load_audio", "AUDIO_EXTENSIONS"]

#: File endings accepted when a corpus adapter scans a folder (all read by libsndfile).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of one audio file.

    Attributes
    ----------
    sample_rate : int
        Samples per second stored in the file.
    channels : int
        Number of channels.
    frames : int
        Number of samples per channel.
    """

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path`` without decoding the samples.

    Raises
    ------
    AudioError
        If the file is missing or libsndfile cannot parse it.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found; check the corpus root or the path column")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types
        raise AudioError(
            f"{path}: unreadable audio ({_short(exc)}); re-encode it as WAV or FLAC"
        ) from exc
    return AudioInfo(sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=int(info.frames))


def load_audio(path: str | Path, *, sample_rate: int = 16000) -> np.ndarray:
    """Decode ``path`` to a mono float32 signal at ``sample_rate``.

    Stereo is averaged to mono; other rates are converted with soxr (high quality).

    Parameters
    ----------
    path : str or Path
        Any file libsndfile reads (WAV, FLAC, OGG, ...).
    sample_rate : int, default=16000
        Rate of the returned signal.

    Returns
    -------
    numpy.ndarray
        1-D float32 array.

    Raises
    ------
    AudioError
        Missing, unreadable or empty file, or samples that are NaN or infinite.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found; check the corpus root or the path column")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(
            f"{path}: unreadable audio ({_short(exc)}); re-encode it as WAV or FLAC"
        ) from exc
    return prepare_signal(data, sr, sample_rate=sample_rate, source=str(path))


def prepare_signal(data: np.ndarray, sr: int, *, sample_rate: int = 16000,
                   source: str = "<array>") -> np.ndarray:
    """Downmix, check and resample an in-memory signal (``(n,)`` or ``(n, channels)``)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if data.size == 0:
        raise AudioError(f"{source}: empty audio (0 samples); remove the file from the corpus")
    if not np.isfinite(data).all():
        raise AudioError(f"{source}: audio holds NaN or infinite samples; re-encode the file")
    if sr != sample_rate:
        data = soxr.resample(data, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(data)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
