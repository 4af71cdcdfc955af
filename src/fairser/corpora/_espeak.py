"""The one binding of the espeak-ng speech synthesiser (library and data of ``espeakng-loader``).

It owns loading the library, finding a data folder espeak-ng can open from any install location,
the one place espeak-ng is initialised (:func:`open_session`), rendering, and :func:`speak`, which
synthesises in a worker process so that nothing espeak-ng does can end its caller.

Why a short data path: espeak-ng 1.52 copies its data folder's path into a fixed buffer of 160
bytes (``N_PATH_HOME``), so a path longer than :data:`MAX_DATA_PATH` (159) bytes does not
initialise; without ``espeakINITIALIZE_DONT_EXIT`` it then falls back to a path compiled into the
wheel and calls ``exit()``. A project cloned into a deep folder puts
``.venv/lib/python3.11/site-packages/espeakng_loader/espeak-ng-data`` past that limit.
:func:`data_path` then hands espeak-ng a symbolic link (or, where links are not allowed, a copy)
named after the install, in the first short enough of: ``$FAIRSER_CACHE/espeak`` (default
``~/.cache/fairser/espeak``), ``$TMPDIR/fairser-UID`` and ``/tmp/fairser-UID``. The link is made
under a temporary name and renamed into place (atomic, safe with concurrent processes), checked
on every use and made again if it is missing or stale (a cleaned ``/tmp``).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fairser._paths import default_cache_dir
from fairser.errors import CorpusError

__all__ = ["MAX_DATA_PATH", "Espeak", "data_path", "open_session", "speak", "version"]

#: Longest data folder path (bytes) espeak-ng 1.52 accepts: its buffer holds 160 bytes with NUL.
MAX_DATA_PATH = 159

_FIX = "reinstall it with `pip install espeakng-loader==0.2.4`"
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_COMPLETE = ".fairser-complete"  # marker of a finished copy of the data folder

# espeak-ng keeps its state per process: one session at a time (a constant lock, no state).
_LOCK = threading.Lock()
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


def _load() -> tuple[ctypes.CDLL, str]:
    """Return the espeak-ng library (argument types set) and its real data folder."""
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
    except (ImportError, OSError, RuntimeError) as exc:
        raise CorpusError(f"espeak-ng: cannot load it from espeakng-loader ({exc}); {_FIX}") \
            from exc
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None
    return lib, data


def version() -> str:
    """Return the version string of the bundled espeak-ng library (no initialisation)."""
    out = _load()[0].espeak_Info(None)
    return out.decode() if out else "unknown"


# ----------------------------------------------------------------------------- data path


def _fits(path: str | Path) -> bool:
    return len(os.fsencode(str(path))) <= MAX_DATA_PATH


def _short_dirs() -> list[Path]:
    """Folders that may hold the short link, in order of preference."""
    uid = getattr(os, "getuid", lambda: 0)()
    out: list[Path] = []
    for folder in (default_cache_dir() / "espeak", Path(tempfile.gettempdir()) / f"fairser-{uid}",
                   Path("/tmp") / f"fairser-{uid}"):
        if folder not in out:
            out.append(folder)
    return out


def _private_dir(folder: Path) -> bool:
    """Create ``folder`` (owner-only when new) and check it is a real folder of this user."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.lstat()
    except OSError:
        return False
    uid = getattr(os, "getuid", None)
    return folder.is_dir() and not folder.is_symlink() and (uid is None or st.st_uid == uid())


def _usable(entry: Path, real: str) -> bool:
    if entry.is_symlink():
        return os.readlink(entry) == real and entry.is_dir()
    return (entry / _COMPLETE).is_file()


def _publish(folder: Path, name: str, real: str) -> Path | None:
    """Make ``folder/name`` a link to (or a copy of) ``real`` atomically; None if impossible."""
    final = folder / name
    if _usable(final, real):
        return final
    tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        try:
            os.symlink(real, tmp, target_is_directory=True)
        except (OSError, NotImplementedError):  # no links here: copy the folder (about 20 MB)
            shutil.copytree(real, tmp)
            (tmp / _COMPLETE).write_text(real + "\n")
        os.replace(tmp, final)  # atomic; a concurrent twin made the same entry
    except OSError:
        pass
    finally:
        if tmp.is_symlink() or tmp.is_file():
            tmp.unlink(missing_ok=True)
        elif tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final if _usable(final, real) else None


def data_path() -> str:
    """Return a path of espeak-ng's data folder short enough for espeak-ng to open.

    The real folder when its path fits in :data:`MAX_DATA_PATH` bytes, else a link to it (or a
    copy) in a short folder (see the module docstring). The same install always gets the same
    path.

    Raises
    ------
    CorpusError
        When the real path is too long and no short folder can be written.
    """
    real = _load()[1]
    if _fits(real):
        return real
    resolved = os.path.realpath(real)
    if _fits(resolved):
        return resolved
    st = os.stat(os.path.join(resolved, "phondata"))
    name = hashlib.sha256(f"{resolved}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    tried = []
    for folder in _short_dirs():
        tried.append(str(folder))
        if _fits(folder / name) and _private_dir(folder):
            entry = _publish(folder, name, resolved)
            if entry is not None:
                return str(entry)
    raise CorpusError(
        f"espeak-ng: its data folder {real} is {len(os.fsencode(real))} bytes long (espeak-ng "
        f"accepts at most {MAX_DATA_PATH}) and no short link could be made in "
        f"{', '.join(tried)}; set FAIRSER_CACHE to a short writable folder (e.g. /tmp/fc)")


# ----------------------------------------------------------------------------- sessions


class Espeak:
    """An initialised espeak-ng session that renders text to float32 samples at its own rate."""

    def __init__(self, lib: ctypes.CDLL, sample_rate: int) -> None:
        self._lib = lib
        self.sample_rate = sample_rate
        self._chunks: list[np.ndarray] = []

        def collect(wav: ctypes.POINTER(ctypes.c_short), n: int, _events: int) -> int:
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _SynthCallback(collect)  # keep a reference while espeak may call it
        lib.espeak_SetSynthCallback(self._callback)

    def render(self, text: str, *, voice: str, rate: int, pitch: int, pitch_range: int,
               rand_seed: int = 0) -> np.ndarray:
        """Synthesise ``text`` with ``voice`` and prosody settings; return float32 samples."""
        lib = self._lib
        lib.espeak_ng_SetRandSeed(int(rand_seed) & 0x7FFFFFFF)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise CorpusError(f"espeak-ng: no voice {voice!r}; {_FIX} (its data folder is "
                              "incomplete)")
        lib.espeak_SetParameter(_RATE, int(np.clip(rate, 80, 450)), 0)
        lib.espeak_SetParameter(_VOLUME, 100, 0)
        lib.espeak_SetParameter(_PITCH, int(np.clip(pitch, 0, 99)), 0)
        lib.espeak_SetParameter(_RANGE, int(np.clip(pitch_range, 0, 100)), 0)
        self._chunks.clear()
        data = text.encode("utf-8")
        buf = ctypes.create_string_buffer(data)
        err = lib.espeak_Synth(buf, len(data) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8,
                               None, None)
        lib.espeak_Synchronize()
        if err != 0 or not self._chunks:
            raise CorpusError(f"espeak-ng: failed on {text!r} with voice {voice!r} (error {err}); "
                              f"{_FIX}")
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0


@contextmanager
def open_session(*, data: str | None = None) -> Iterator[Espeak]:
    """Initialise espeak-ng (the only place that does) and yield a session; terminate after.

    Initialisation never exits the process: a failure raises :class:`CorpusError`. Run it in a
    worker process (as :func:`speak` and the synthetic corpus do): espeak-ng keeps process-wide
    state that ``espeak_Terminate`` does not fully reset.

    Parameters
    ----------
    data : str, optional
        Data folder; default :func:`data_path`.
    """
    lib, _ = _load()
    data = data_path() if data is None else data
    with _LOCK:
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data),
                                   _ESPEAK_INITIALIZE_DONT_EXIT)
        if sr <= 0:
            raise CorpusError(f"espeak-ng: failed to initialise with its data at {data} (a "
                              f"folder path of at most {MAX_DATA_PATH} bytes); {_FIX}")
        try:
            yield Espeak(lib, sr)
        finally:
            lib.espeak_Terminate()


# ----------------------------------------------------------------------------- workers


def start_worker(task: dict, **popen) -> subprocess.Popen:
    """Start ``python -m fairser.corpora._synth_worker TASK_JSON`` (stderr piped, text mode)."""
    env = dict(os.environ)
    # .../src/fairser/corpora/_espeak.py -> .../src: where the fairser package lives
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "fairser.corpora._synth_worker",
                             json.dumps(task)], env=env, stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **popen)


def worker_error(what: str, returncode: int, stderr: str) -> CorpusError:
    """The error of a failed worker: its own one-line message, or its last line and exit code."""
    lines = stderr.strip().splitlines()
    if returncode == 2 and lines:  # the worker printed a FairserError message
        return CorpusError(lines[-1])
    last = f"{lines[-1]}; exit code {returncode}" if lines else f"exit code {returncode}"
    return CorpusError(f"espeak-ng: {what} failed in its worker process ({last}); {_FIX} or "
                       "report the error")


def speak(items: Sequence[tuple[str, str]], *, rate: int = 160, pitch: int = 50,
          sample_rate: int = 16000) -> list[np.ndarray]:
    """Synthesise each ``(text, voice)`` in a worker process; return float32 signals.

    Parameters
    ----------
    items : sequence of (str, str)
        Text and espeak-ng voice (``"en"``, ``"cmn"``, ``"en+f2"``, ...).
    rate : int, default=160
        Words per minute.
    pitch : int, default=50
        Base pitch (0-99).
    sample_rate : int, default=16000
        Rate of the returned signals.

    Raises
    ------
    CorpusError
        When espeak-ng cannot be loaded, initialised or render, or its worker dies.
    """
    with tempfile.TemporaryDirectory(prefix="fairser-speak-") as tmp:
        task = {"task": "speak", "out": tmp, "items": [list(i) for i in items], "rate": rate,
                "pitch": pitch, "sample_rate": sample_rate}
        proc = start_worker(task, stdout=subprocess.DEVNULL)
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise worker_error("speech synthesis", proc.returncode, err)
        return [np.load(Path(tmp) / f"{i}.npy", allow_pickle=False) for i in range(len(items))]


def speak_task(task: dict) -> None:
    """Worker side of :func:`speak`: render each item into ``OUT/<index>.npy``."""
    import soxr

    with open_session() as engine:
        for i, (text, voice) in enumerate(task["items"]):
            raw = engine.render(text, voice=voice, rate=task["rate"], pitch=task["pitch"],
                                pitch_range=50)
            out = soxr.resample(raw, engine.sample_rate, task["sample_rate"]).astype(np.float32)
            np.save(Path(task["out"]) / f"{i}.npy", out, allow_pickle=False)
