"""Reading audio: the one place that decodes, downmixes, resamples and checks samples.

Only libsndfile (``soundfile``) and soxr are used; torchaudio is deliberately avoided.

Two levels of checks, so that scanning a large corpus stays fast:

- :func:`audio_info` reads the **header** only (WAV and FLAC headers are parsed here directly,
  by content rather than by extension; other formats go through libsndfile). It fails with a
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

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
_BLOCK = 1 << 16
_HEAD = 4096


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
    subtype : str
        libsndfile's name of the sample format (``PCM_16``, ``FLOAT``, ...) or ``""``.
    """

    sample_rate: int
    channels: int
    frames: int
    subtype: str = ""

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _error(kind: str, path: str | Path, reason: str) -> AudioError:
    err = AudioError(f"{path}: {reason}")
    err.kind = kind  # type: ignore[attr-defined]
    err.reason = reason  # type: ignore[attr-defined]
    return err


def _stat(path: str) -> os.stat_result:
    """Stat ``path`` (following links); missing, broken or looping links raise AudioError."""
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _error("broken-link", path, "symbolic link loop; point the link at the audio "
                         "file or remove it") from None
        if os.path.islink(path):
            raise _error("broken-link", path, f"broken symbolic link to {os.readlink(path)} "
                         "(target missing); fix or remove the link") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise _error("unreadable-audio", path, "unreadable audio: permission denied on its "
                         "folder; make it readable (chmod a+rx on the folder)") from None
        raise _error("missing-audio", path, "audio file not found; check the corpus root or "
                     "the path column") from None


def _open(path: str):
    return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller's with-block


class _Reader:
    """Random access to a file's first bytes from one read, seeking only beyond them."""

    def __init__(self, fh, size: int) -> None:
        self.fh, self.size, self.head = fh, size, fh.read(_HEAD)

    def at(self, offset: int, n: int) -> bytes:
        if offset + n <= len(self.head):
            return self.head[offset:offset + n]
        self.fh.seek(offset)
        return self.fh.read(n)


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path`` without decoding the samples.

    Raises
    ------
    AudioError
        If the file is missing, a broken or looping link, not readable (permission), empty,
        in a format libsndfile does not read, or shorter than its header declares (``kind``
        tells which).
    """
    spath = os.fspath(path)
    st = _stat(spath)
    if not stat.S_ISREG(st.st_mode):
        raise _error("unreadable-audio", spath, "unreadable audio: a folder, not a file; "
                     "point the row at the audio file")
    if st.st_size == 0:
        raise _error("unreadable-audio", spath, "unreadable audio: empty file (0 bytes); "
                     "replace it with the original recording or remove it")
    try:
        with _open(spath) as fh:
            rd = _Reader(fh, st.st_size)
            if rd.head[:4] == b"RIFF" and rd.head[8:12] == b"WAVE":
                info = _wav_info(rd, spath)
            elif rd.head[:4] == b"fLaC":
                info = _flac_info(rd, spath)
            else:
                info = None
    except PermissionError:
        raise _error("unreadable-audio", spath, "unreadable audio: permission denied; make it "
                     f"readable (chmod a+r {spath})") from None
    except OSError as exc:
        raise _error("unreadable-audio", spath, f"unreadable audio ({exc.strerror}); check the "
                     "disk or copy the file again") from None
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
                raise _truncated(path, int(info.frames), int(info.samplerate),
                                 f"{present} of the {declared} data bytes it declares")
    return AudioInfo(sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=int(info.frames), subtype=str(info.subtype))


def _truncated(path: str | Path, frames: int, sr: int, what: str) -> AudioError:
    return _error("truncated-audio", path, f"truncated audio: the file holds only {what} "
                  f"(header: {frames / sr if sr else 0:.3f} s); replace it with a complete copy")


_WAV_SUBTYPES = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32",
                 (3, 32): "FLOAT", (3, 64): "DOUBLE"}


def _u(raw: bytes, a: int, b: int, order: str = "little") -> int:
    return int.from_bytes(raw[a:b], order)


def _wav_info(rd: _Reader, path: str) -> AudioInfo | None:
    """Parse a RIFF/WAVE header (PCM and float only; anything else goes to libsndfile)."""
    pos, fmt, size = 12, None, rd.size
    while pos + 8 <= size:
        chunk = rd.at(pos, 8)
        cid, csize = chunk[:4], _u(chunk, 4, 8)
        if cid == b"fmt ":
            raw = rd.at(pos + 8, min(csize, 40))
            if len(raw) < 16:
                return None
            tag = _u(raw, 0, 2)
            if tag == 0xFFFE and len(raw) >= 26:
                tag = _u(raw, 24, 26)
            fmt = (tag, _u(raw, 2, 4), _u(raw, 4, 8), _u(raw, 12, 14), _u(raw, 14, 16))
        elif cid == b"data":
            if fmt is None or (fmt[0], fmt[4]) not in _WAV_SUBTYPES or fmt[3] <= 0 or not fmt[2]:
                return None
            tag, channels, sr, align, bits = fmt
            present = size - pos - 8
            declared = present if csize in (0, 0xFFFFFFFF) else csize
            if declared > present and declared // align > present // align:
                raise _truncated(path, declared // align, sr,
                                 f"{present} of the {declared} data bytes it declares")
            return AudioInfo(sample_rate=sr, channels=channels, frames=declared // align,
                             subtype=_WAV_SUBTYPES[(tag, bits)])
        pos += 8 + csize + (csize & 1)
    return None


def _flac_info(rd: _Reader, path: str) -> AudioInfo | None:
    """Parse a FLAC STREAMINFO block and check that its frames can fit in the file."""
    pos, info, size = 4, b"", rd.size
    while pos + 4 <= size:
        head = rd.at(pos, 4)
        if head[0] & 0x7F == 0:
            info = rd.at(pos + 4, 34)
        pos += 4 + _u(head, 1, 4, "big")
        if head[0] & 0x80:
            break
    if len(info) < 18:
        return None
    min_block, max_block = _u(info, 0, 2, "big"), _u(info, 2, 4, "big")
    packed = _u(info, 10, 18, "big")
    sr, channels = packed >> 44, ((packed >> 41) & 0x7) + 1
    bits, total = ((packed >> 36) & 0x1F) + 1, packed & 0xFFFFFFFFF
    if total == 0 or sr == 0:
        return None  # length unknown in the header: let libsndfile count
    max_frame = _u(info, 7, 10, "big")
    window = min(size - pos, max_frame + 64 if max_frame else 1 << 16)
    if window > 0:
        last = _flac_last_end(rd.at(size - window, window), min_block == max_block,
                              max_block, sr, bits, total)
        if last is not None and last != total:
            raise _truncated(path, total, sr, f"{last / sr:.3f} s of audio (its last frame "
                             "is missing)")
    subtype = {8: "PCM_S8", 16: "PCM_16", 24: "PCM_24"}.get(bits, f"PCM_{bits}")
    return AudioInfo(sample_rate=sr, channels=channels, frames=total, subtype=subtype)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


_CRC8 = [0] * 256
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = ((_c << 1) ^ 0x07) & 0xFF if _c & 0x80 else (_c << 1) & 0xFF
    _CRC8[_i] = _c
_FLAC_RATES = {1: 88200, 2: 176400, 3: 192000, 4: 8000, 5: 16000, 6: 22050, 7: 24000,
               8: 32000, 9: 44100, 10: 48000, 11: 96000}
_FLAC_BITS = {1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}


def _flac_last_end(tail: bytes, fixed: bool, block: int, sr: int, bits: int,
                   total: int) -> int | None:
    """Return ``total`` if ``tail`` holds the header of the last frame, else the furthest end
    sample of a frame header found there (``None`` when none is found: cannot tell).

    A frame header is accepted only when its CRC-8 matches and its sample rate and sample size
    agree with STREAMINFO, so a stray sync pattern inside compressed data is not taken for one.
    """
    sync = b"\xff\xf8" if fixed else b"\xff\xf9"
    best, at = None, tail.rfind(sync)
    while at >= 0:
        end = _flac_frame_end(tail, at, fixed, block, sr, bits) if at + 6 <= len(tail) else None
        if end == total:
            return total
        if end is not None and end < total:
            best = max(best or 0, end)
        at = tail.rfind(sync, 0, at + 1) if at > 0 else -1
    return best


def _flac_frame_end(buf: bytes, at: int, fixed: bool, block: int, sr: int,
                    bits: int) -> int | None:
    bs_code, sr_code = buf[at + 2] >> 4, buf[at + 2] & 0xF
    size_code = (buf[at + 3] >> 1) & 0x7
    if bs_code == 0 or sr_code == 15 or (buf[at + 3] >> 4) > 10 or buf[at + 3] & 1:
        return None
    if (sr_code and sr_code < 12 and _FLAC_RATES[sr_code] != sr) or \
            (size_code and _FLAC_BITS.get(size_code) != bits):
        return None
    i, first = at + 4, buf[at + 4]  # UTF-8-like coded frame or sample number
    extra = 0 if first < 0x80 else next((k for k in range(1, 7) if (first << k) & 0x80 == 0
                                         and (first << (k - 1)) & 0x80), -1)
    if extra < 0 or i + 1 + extra > len(buf):
        return None
    number = first & (0x7F >> extra) if extra else first
    for k in range(1, extra + 1):
        if buf[i + k] & 0xC0 != 0x80:
            return None
        number = (number << 6) | (buf[i + k] & 0x3F)
    i += 1 + extra
    if bs_code in (6, 7):
        n = 1 if bs_code == 6 else 2
        size = int.from_bytes(buf[i:i + n], "big") + 1
        i += n
    else:
        size = 192 if bs_code == 1 else 576 << (bs_code - 2) if bs_code <= 5 else \
            256 << (bs_code - 8)
    i += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if i >= len(buf) or _crc8(buf[at:i]) != buf[i]:
        return None
    return (number * block if fixed else number) + size


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
    if stopped is not None or n < info.frames:
        why = f" ({stopped})" if stopped else ""
        out.append(("truncated-audio", f"truncated audio: decoding stops after "
                    f"{n / info.sample_rate:.3f} s of the {info.duration_s:.3f} s its header "
                    f"declares{why}; replace it with a complete copy"))
    if n_bad:
        out.append(("out-of-range-audio", f"{n_bad} NaN or infinite sample(s); re-export the "
                    "file from its source"))
    elif n_over:
        out.append(("out-of-range-audio", f"{n_over} float sample(s) beyond +-1 (peak "
                    f"{peak:.3g}); normalise the file (scale it to a peak below 1)"))
    total = max(n * info.channels, 1)
    if n and peak < SILENCE_PEAK:
        level = f"{20 * np.log10(peak):.0f} dBFS" if peak > 0 else "all zero"
        out.append(("silent-audio", f"silent audio (peak {level}); check the recording or "
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
        raise _truncated(path, info.frames, info.sample_rate,
                         f"{len(data) / sr:.3f} s of audio")
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
