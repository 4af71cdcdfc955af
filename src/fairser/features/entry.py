"""One store entry on disk (an ``.npy`` file of shape ``(L, T, D)``): reading it and checking it.

An entry can be damaged after it was written: a disk filled up under another tool, a copy was
interrupted, a file was edited or replaced by hand, an older fairser wrote values that were not
finite. Every read therefore checks the entry before it is served, and the checks come in two
strengths:

* **cheap** (every read, and every :func:`fairser.features.extract` scan of the store): the file
  is not empty, its npy header parses, its size is exactly header plus ``L * T * D`` values, the
  shape is ``(L, T >= 1, D)`` with the ``L`` and ``D`` of the frontend configuration, the dtype is
  the store's, and a **sample** of values is finite (the first, middle and last of the ``L * T``
  frames: at most two small ``pread`` calls beyond the header, however long the entry is);
* **full** (``extract(..., verify=True)`` / ``fairser features extract --verify``): every value
  is read and checked for NaN and infinity.

Values are also checked in full once, when they are written (:meth:`FeatureStore.put` refuses
non-finite arrays), so a non-finite value that the sample misses can only come from damage after
the write; ``--verify`` finds those. A check returns a one-phrase reason; a read of a damaged
entry raises a one-line :class:`~fairser.errors.FeatureError` naming the file and the fix.
"""

from __future__ import annotations

import functools
import io
import math
import mmap as _mmap
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairser.errors import FeatureError

__all__ = ["MISSING", "EntrySpec", "damaged_error", "entry_problem", "entry_shape",
           "is_mapped", "read_entry"]

#: :func:`entry_problem`'s answer when there is no file at all (not damage: not computed yet).
MISSING = "missing"

_HEAD = 4096  # bytes read at once for the header (npy headers are padded to 64 bytes)


@dataclass(frozen=True)
class EntrySpec:
    """What every entry of one store must look like.

    Attributes
    ----------
    n_layers : int or None
        ``L`` (``None``: not checked).
    dim : int or None
        ``D`` (``None``: not checked).
    dtype : str
        Storage dtype, e.g. ``"float16"``.
    """

    n_layers: int | None = None
    dim: int | None = None
    dtype: str = "float16"


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int


# The header np.save writes (format 1.0 / 2.0), parsed without ``ast.literal_eval`` (which costs
# more than everything else of a cheap check); anything else goes through numpy's parser.
_FAST_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[a-zA-Z]\d+)', 'fortran_order': (True|False), "
    rb"'shape': \(((?:\d+, ?)*\d*)\), \} *\n")


@functools.lru_cache(maxsize=32)
def _dtype(descr: bytes) -> np.dtype:
    return np.dtype(descr.decode())


@functools.lru_cache(maxsize=32)
def _named_dtype(name: str) -> np.dtype:
    return np.dtype(name)


def _parse_header(head: bytes) -> _Header:
    if head[:6] == b"\x93NUMPY" and head[6:7] in (b"\x01", b"\x02"):
        start = 10 if head[6] == 1 else 12
        length = int.from_bytes(head[8:start], "little")
        match = _FAST_HEADER.fullmatch(head[start:start + length])
        if match is not None:
            shape = tuple(int(n) for n in match.group(3).split(b",") if n.strip())
            return _Header(shape, _dtype(match.group(1)), match.group(2) == b"True",
                           start + length)
    bio = io.BytesIO(head)
    version = np.lib.format.read_magic(bio)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(bio)
    return _Header(tuple(int(n) for n in shape), np.dtype(dtype), bool(fortran), bio.tell())


def _read_header(fd: int, size: int) -> tuple[_Header | str, bytes]:
    """The header (or why it cannot be used) and the first bytes of the file."""
    if size == 0:
        return "empty file (0 bytes)", b""
    head = os.pread(fd, _HEAD, 0)
    try:
        return _parse_header(head), head
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        text = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else ""
        return f"not a valid npy file ({text or type(exc).__name__})", head


def _problem(fd: int, size: int, spec: EntrySpec | None, *, full: bool) -> str | None:
    return _check(fd, size, spec, full=full)[0]


def _check(fd: int, size: int, spec: EntrySpec | None, *,
           full: bool) -> tuple[str | None, _Header | None]:
    """(why the entry cannot be served or None, its header when it parsed)."""
    hdr, head = _read_header(fd, size)
    if isinstance(hdr, str):
        return hdr, None
    return _check_parsed(fd, size, spec, hdr, head, full=full), hdr


def _check_parsed(fd: int, size: int, spec: EntrySpec | None, hdr: _Header, head: bytes, *,
                  full: bool) -> str | None:
    if hdr.dtype.hasobject or hdr.fortran:
        return "not a plain C-ordered numeric array"
    if len(hdr.shape) != 3:
        return f"shape {hdr.shape} is not (L, T, D)"
    n_layers, n_frames, dim = hdr.shape
    expected = hdr.offset + n_layers * n_frames * dim * hdr.dtype.itemsize
    if size < expected:
        return f"truncated ({size} of {expected} bytes)"
    if size > expected:
        return f"{size - expected} bytes beyond the array its header describes"
    if spec is not None:
        if spec.n_layers is not None and n_layers != spec.n_layers or (
                spec.dim is not None and dim != spec.dim):
            want = (f"({spec.n_layers if spec.n_layers is not None else 'L'}, T, "
                    f"{spec.dim if spec.dim is not None else 'D'})")
            return f"shape {hdr.shape} does not match this frontend configuration {want}"
        if hdr.dtype != _named_dtype(spec.dtype):
            return f"dtype {hdr.dtype} is not the store's {spec.dtype}"
    if n_frames < 1 or dim < 1 or n_layers < 1:
        return f"shape {hdr.shape} holds no values"
    if full:
        with _mmap.mmap(fd, 0, access=_mmap.ACCESS_READ) as mapped:
            arr = np.frombuffer(mapped, dtype=hdr.dtype, count=n_layers * n_frames * dim,
                                offset=hdr.offset).reshape(hdr.shape)
            finite = all(bool(np.isfinite(arr[i]).all()) for i in range(n_layers))
            del arr  # the map cannot close while a view of it exists
        return None if finite else "non-finite values (NaN or infinity)"
    # Sample: the first, middle and last frame of the file (layer-major: the first frame of
    # the first layer, the middle, the last frame of the last layer), in one isfinite call.
    row = dim * hdr.dtype.itemsize
    total = n_layers * n_frames
    chunks = []
    for frame in sorted({0, total // 2, total - 1}):
        at = hdr.offset + frame * row
        chunks.append(head[at:at + row] if at + row <= len(head) else os.pread(fd, row, at))
    if not np.isfinite(np.frombuffer(b"".join(chunks), dtype=hdr.dtype)).all():
        return "non-finite values (NaN or infinity) in a sampled frame"
    return None


def entry_problem(path: str | Path, spec: EntrySpec | None = None, *,
                  full: bool = False) -> str | None:
    """Why the entry at ``path`` cannot be served, or ``None`` when it is intact.

    Parameters
    ----------
    path : str or Path
        The entry file.
    spec : EntrySpec, optional
        Expected ``L``, ``D`` and dtype (only the structure is checked without it).
    full : bool, default=False
        Check every value for NaN and infinity instead of a sample (see the module notes).

    Returns
    -------
    str or None
        ``None`` if intact, :data:`MISSING` if there is no file, else a short reason.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or exc})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "a folder or special file stands where the entry file should be"
        return _problem(fd, st.st_size, spec, full=full)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    finally:
        os.close(fd)


def damaged_error(path: str | Path, reason: str) -> FeatureError:
    """The one-line error for a damaged entry: the file, what is wrong, and the fix."""
    return FeatureError(
        f"{path}: damaged feature entry ({reason}); rerun `fairser features extract` for this "
        f"corpus and frontend to recompute it (add --verify to check every value of the store)")


def read_entry(path: str | Path, spec: EntrySpec | None = None, *,
               mmap: bool = True) -> np.ndarray:
    """The ``(L, T, D)`` array of a store entry, checked first (cheap checks, see the module).

    Parameters
    ----------
    path : str or Path
        The entry file.
    spec : EntrySpec, optional
        Expected ``L``, ``D`` and dtype.
    mmap : bool, default=True
        Return a read-only memory map (only the pages touched are read) instead of a copy.

    Raises
    ------
    FeatureError
        The entry is missing or damaged (one line naming the file and the fix).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise FeatureError(f"{path}: feature entry is missing; rerun `fairser features extract` "
                           f"for this corpus and frontend") from None
    except OSError as exc:
        raise damaged_error(path, f"cannot be opened ({exc.strerror or exc})") from None
    try:  # one open: the checks and the read see the same file
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise damaged_error(path, "a folder or special file stands where the entry file "
                                      "should be")
        problem, hdr = _check(fd, st.st_size, spec, full=False)
        if problem is not None or hdr is None:
            raise damaged_error(path, problem or "no header")
        count = math.prod(hdr.shape)
        if mmap:
            # a plain read-only array over the map (np.memmap's subclass costs more per slice
            # than the read); the map stays open as long as an array refers to it
            mapped = _mmap.mmap(fd, 0, access=_mmap.ACCESS_READ)
            return np.frombuffer(mapped, dtype=hdr.dtype, count=count,
                                 offset=hdr.offset).reshape(hdr.shape)
        data = np.empty(count, dtype=hdr.dtype)
        got = os.preadv(fd, [memoryview(data).cast("B")], hdr.offset)
        if got != data.nbytes:
            raise damaged_error(path, f"unreadable: {got} of {data.nbytes} bytes read")
        return data.reshape(hdr.shape)
    except OSError as exc:
        raise damaged_error(path, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def is_mapped(a: np.ndarray) -> bool:
    """Whether ``a`` is a view of a memory-mapped entry (as :func:`read_entry` returns), not a
    copy in memory."""
    base: object = a
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, _mmap.mmap)


def entry_shape(path: str | Path) -> tuple[int, ...]:
    """Shape of a store entry from its npy header, without reading the data.

    Raises
    ------
    FeatureError
        The file is missing or its header is damaged.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise damaged_error(path, f"cannot be opened ({exc.strerror or exc})") from None
    try:
        hdr, _ = _read_header(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    if isinstance(hdr, str):
        raise damaged_error(path, hdr)
    return hdr.shape
