"""Reading audio: the one place that decodes, downmixes, resamples and checks samples.

Only libsndfile (``soundfile``) and soxr are used; torchaudio is deliberately avoided.

Two levels of checks, so that scanning a large corpus stays fast:

- :func:`audio_info` reads the **header** only (WAV and FLAC headers are parsed directly by
  :mod:`fairser._audio_headers`, told by content rather than by extension; other formats go
  through libsndfile). It fails with a
  one-line :class:`~fairser.errors.AudioError` for a missing file, a broken or looping symbolic
  link, a file it may not read (permission), an empty (0-byte) file, a format it does not read,
  and a file **truncated** below what its header declares (libsndfile itself decodes such a WAV
  half-way without a word; a FLAC is caught when its frames cannot fit in the bytes present).
- :func:`check_audio` decodes the **samples** and returns what looks wrong: silent, clipped,
  out of range (float samples beyond +-1, NaN or infinite) and truncated (decoding stops
  before the header's length). It costs a full decode, so corpus scans run it only when asked
  (``fairser corpus inspect --audio-check``) and cache its verdicts.

Every :class:`AudioError` raised here has a ``kind`` attribute (one of :data:`AUDIO_PROBLEMS`)
and a ``reason`` (the message without the file name), which corpus scans turn into problems.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from fairser._audio_headers import (
    AudioInfo,
    Reader,
    flac_info,
    truncated_error,
    wav_info,
)
from fairser._audio_headers import (
    audio_error as _error,
)
from fairser.errors import AudioError

__all__ = [
    "AUDIO_EXTENSIONS",
    "AUDIO_PROBLEMS",
    "AudioInfo",
    "UNSUPPORTED_EXTENSIONS",
    "audio_info",
    "check_audio",
    "load_audio",
    "prepare_signal",
]

#: File endings accepted when a corpus adapter scans a folder (all read by libsndfile).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".opus",
                                     ".oga", ".au", ".caf", ".w64", ".rf64", ".aifc")

#: Audio endings libsndfile does not read: scans report such files instead of ignoring them.
UNSUPPORTED_EXTENSIONS: tuple[str, ...] = (".m4a", ".m4b", ".aac", ".wma", ".amr", ".ape",
                                           ".wv", ".mka", ".ac3", ".alac", ".mpc", ".ra",
                                           ".sph", ".3gp", ".aup", ".dsf", ".mp2")

#: ``AudioError.kind`` values (problem kinds of a corpus scan).
AUDIO_PROBLEMS: tuple[str, ...] = (
    "missing-audio", "broken-link", "unreadable-audio", "unsupported-audio", "empty-audio",
    "truncated-audio", "silent-audio", "clipped-audio", "out-of-range-audio",
)

#: Peak below this (-60 dBFS) counts as silent.
SILENCE_PEAK = 1e-3
#: Samples at or beyond this magnitude count as at full scale.
CLIP_LEVEL = 0.999
#: Share of samples at full scale from which a file counts as clipped.
CLIP_SHARE = 1e-3
_BLOCK = 1 << 14


def _open_error(path: str, exc: OSError) -> AudioError:
    """The one-line error for a file that cannot be opened, saying why and the fix."""
    if exc.errno == errno.ELOOP:
        return _error("broken-link", path, "symbolic link loop; point the link at the audio "
                      "file or remove it")
    if isinstance(exc, IsADirectoryError):
        return _error("unreadable-audio", path, "unreadable audio: a folder, not a file; point "
                      "the row at the audio file")
    if isinstance(exc, PermissionError):
        folder = os.path.dirname(path) or "."
        if not os.access(folder, os.X_OK):
            return _error("unreadable-audio", path, "unreadable audio: permission denied on "
                          f"its folder; make it readable (chmod a+rx {folder})")
        return _error("unreadable-audio", path, "unreadable audio: permission denied; make it "
                      f"readable (chmod a+r {path})")
    if os.path.islink(path):
        return _error("broken-link", path, f"broken symbolic link to {os.readlink(path)} "
                      "(target missing); fix or remove the link")
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return _error("missing-audio", path, "audio file not found; check the corpus root or "
                      "the path column")
    return _error("unreadable-audio", path, f"unreadable audio ({exc.strerror}); check the "
                  "disk or copy the file again")


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)  # a FIFO named x.wav must not hang the scan


def _open(path: str):
    return open(path, "rb", buffering=0, opener=_nonblocking)  # noqa: SIM115 - caller closes


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path`` without decoding the samples.

    One open, one ``fstat`` and one or two small reads for WAV and FLAC files.

    Raises
    ------
    AudioError
        If the file is missing, a broken or looping link, not readable (permission), empty,
        in a format libsndfile does not read, or shorter than its header declares (``kind``
        tells which).
    """
    spath = os.fspath(path)
    try:
        with _open(spath) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _error("unreadable-audio", spath, "unreadable audio: not a regular file; "
                             "point the row at the audio file")
            if st.st_size == 0:
                raise _error("unreadable-audio", spath, "unreadable audio: empty file (0 "
                             "bytes); replace it with the original recording or remove it")
            rd = Reader(fh, st.st_size)
            if rd.head[:4] == b"RIFF" and rd.head[8:12] == b"WAVE":
                info = wav_info(rd, spath)
            elif rd.head[:4] == b"fLaC":
                info = flac_info(rd, spath)
            else:
                info = None
    except OSError as exc:
        raise _open_error(spath, exc) from None
    return info if info is not None else _sf_info(Path(spath))


def _sf_info(path: Path) -> AudioInfo:
    if path.suffix.lower() in UNSUPPORTED_EXTENSIONS:
        raise _error("unsupported-audio", path, f"unsupported audio format {path.suffix}; "
                     f"convert it to FLAC or WAV (e.g. ffmpeg -i {path.name} "
                     f"{path.stem}.flac)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types
        raise _error("unreadable-audio", path, f"unreadable audio ({_short(exc, path)}); "
                     "re-encode it as WAV or FLAC") from None
    for line in str(info.extra_info).splitlines():  # libsndfile: "data : 64000 (should be 9)"
        name, _, rest = line.partition(":")
        if name.strip() in ("data", "SSND") and "(should be" in rest:
            declared = int(rest.split("(")[0].strip() or 0)
            present = int(rest.split("should be")[1].strip(" )") or 0)
            if declared > present:
                frames = int(info.frames)  # libsndfile counts what is present
                raise truncated_error(path, frames * declared // max(present, 1), frames,
                                 int(info.samplerate))
    return AudioInfo(sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=int(info.frames), subtype=str(info.subtype))


def check_audio(path: str | Path) -> list[tuple[str, str]]:
    """Decode ``path`` and return what looks wrong with its samples.

    Returns
    -------
    list of (kind, reason)
        Empty when the file looks fine; kinds are ``truncated-audio`` (decoding stops before
        the header's length), ``out-of-range-audio`` (float samples beyond +-1, NaN or
        infinite), ``silent-audio`` (peak below -60 dBFS) and ``clipped-audio`` (at least
        0.1 % of the samples at full scale).

    Raises
    ------
    AudioError
        For what :func:`audio_info` already rejects.
    """
    path = Path(path)
    info = audio_info(path)
    n = n_full = n_bad = n_over = 0
    peak = 0.0
    stopped: str | None = None
    try:
        with sf.SoundFile(str(path)) as snd:
            while True:
                block = snd.read(_BLOCK, dtype="float32", always_2d=True)
                if not len(block):
                    break
                n += len(block)
                finite = np.isfinite(block)
                n_bad += int((~finite).sum())
                mag = np.abs(np.where(finite, block, 0.0))
                peak = max(peak, float(mag.max()))
                n_over += int((mag > 1.0 + 1e-6).sum())
                n_full += int((mag >= CLIP_LEVEL).sum())
    except Exception as exc:  # libsndfile stops on corrupt or missing data
        stopped = _short(exc, path)
    out: list[tuple[str, str]] = []
    if stopped is not None:
        out.append(("truncated-audio", f"truncated or corrupt audio: decoding fails before the "
                    f"end of the {info.duration_s:.3f} s its header declares ({stopped}); "
                    "replace it with a complete copy"))
    elif n < info.frames:
        out.append(("truncated-audio", f"truncated audio: decoding stops after "
                    f"{n / info.sample_rate:.3f} s of the {info.duration_s:.3f} s its header "
                    "declares; replace it with a complete copy"))
    if n_bad:
        out.append(("out-of-range-audio", f"{n_bad} NaN or infinite sample(s); re-export the "
                    "file from its source"))
    elif n_over:
        out.append(("out-of-range-audio", f"{n_over} float sample(s) beyond +-1 (peak "
                    f"{peak:.3g}); normalise the file (scale it to a peak below 1)"))
    total = max(n * info.channels, 1)
    if n and peak < SILENCE_PEAK:
        level = f"peak {20 * np.log10(peak):.0f} dBFS" if peak > 0 else "every sample zero"
        out.append(("silent-audio", f"silent audio ({level}); check the recording or "
                    "remove the file"))
    elif n_full / total >= CLIP_SHARE and not n_over:
        out.append(("clipped-audio", f"clipped audio ({100 * n_full / total:.1f} % of the "
                    "samples at full scale); use an unclipped copy or remove the file"))
    return out


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
        Missing, unreadable, empty or truncated file, or samples that are NaN or infinite.
    """
    path = Path(path)
    info = audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise _error("truncated-audio" if _is_truncation(exc) else "unreadable-audio", path,
                     f"unreadable audio ({_short(exc, path)}); replace it with a complete "
                     "copy or re-encode it as WAV or FLAC") from None
    if len(data) < info.frames:
        raise truncated_error(path, info.frames, len(data), info.sample_rate, how="decodes to")
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


def _is_truncation(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("lost sync", "psf_fseek", "unexpected end", "short read"))


def _short(exc: BaseException, path: str | Path | None = None) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if path is not None:  # libsndfile repeats the whole path: "Error opening '/x/y.wav': ..."
        text = text.replace(f"Error opening {str(path)!r}: ", "").replace(f"{path}: ", "")
    text = text.removeprefix("Error : ").rstrip(".")
    return (text[:1].lower() + text[1:])[:160]
