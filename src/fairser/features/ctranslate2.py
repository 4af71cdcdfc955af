"""Reader of CTranslate2 ``model.bin`` files (no ctranslate2 dependency).

Layout (binary version 6, little endian), as written by ctranslate2's ``ModelSpec.save``::

    uint32 binary_version
    string spec_name                # string = uint16 length (incl. NUL) + bytes + NUL
    uint32 spec_revision
    uint32 n_variables
    n_variables x { string name; uint8 ndims; uint32 dims[ndims]; uint8 dtype;
                    uint32 n_bytes; bytes data[n_bytes] }
    uint32 n_aliases
    n_aliases x { string alias; string target }

dtype ids follow ctranslate2's ``DataType`` enum: 0 float32, 1 int8, 2 int16, 3 int32,
4 float16, 5 bfloat16. Quantized weights ``X/weight`` (int8 or int16) come with a
``X/weight_scale`` such that ``float = quantized / scale`` (per output row for int8).

The reader streams: it reads one variable at a time from any binary file object, keeps only the
variables a caller selects, and can hash every byte it reads, so a model split across several
files is verified and parsed in one pass without ever joining it on disk.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fairser.errors import FeatureError

__all__ = ["CT2Model", "ChainedReader", "read_ctranslate2", "dequantize"]

_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}
_BFLOAT16 = 5
_SUPPORTED_VERSIONS = (3, 4, 5, 6)


class ChainedReader(io.RawIOBase):
    """Read several files as one stream, hashing every byte read (SHA-256).

    Parameters
    ----------
    paths : iterable of Path
        The parts, in order.
    """

    def __init__(self, paths: Iterable[Path]) -> None:
        super().__init__()
        self._paths = [Path(p) for p in paths]
        self._index = 0
        self._fh: BinaryIO | None = None
        self.sha256 = hashlib.sha256()
        self.n_read = 0

    def readable(self) -> bool:  # noqa: D102 - io protocol
        return True

    def readinto(self, buffer) -> int:  # noqa: D102 - io protocol
        view = memoryview(buffer).cast("B")
        while self._index < len(self._paths):
            if self._fh is None:
                self._fh = open(self._paths[self._index], "rb")  # noqa: SIM115 - closed below
            n = self._fh.readinto(view)
            if n:
                self.sha256.update(view[:n])
                self.n_read += n
                return n
            self._fh.close()
            self._fh = None
            self._index += 1
        return 0

    def close(self) -> None:  # noqa: D102 - io protocol
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()


@dataclass
class CT2Model:
    """Selected variables of a CTranslate2 model file.

    Attributes
    ----------
    spec : str
        Spec name, e.g. ``"WhisperSpec"``.
    revision : int
        Spec revision.
    binary_version : int
        File format version.
    variables : dict of str to numpy.ndarray
        Raw arrays as stored (quantized ones still quantized).
    names : list of str
        Every variable name in the file, selected or not.
    aliases : dict of str to str
        Alias name to target variable name.
    """

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        """Float32 value of ``name`` (aliases resolved, quantized weights dequantized)."""
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise FeatureError(
                f"CTranslate2 {self.spec} model: variable {name!r} is missing; "
                f"the model file is not the expected architecture"
            )
        return dequantize(self.variables, name)


def dequantize(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Float32 copy of ``variables[name]``, dividing quantized weights by their scale."""
    value = variables[name]
    if value.dtype.kind == "f":
        return value.astype(np.float32)
    scale_name = name + "_scale"
    if scale_name in variables:
        scale = variables[scale_name].astype(np.float32)
        if scale.ndim == 1 and value.ndim >= 2:
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
        return value.astype(np.float32) / scale
    return value.astype(np.float32)


def _read_exact(fh: BinaryIO, n: int, source: str) -> bytes:
    data = fh.read(n)
    if data is None or len(data) != n:
        raise FeatureError(
            f"{source}: truncated CTranslate2 model file; reinstall the package that ships it"
        )
    return data


def read_ctranslate2(fh: BinaryIO, *, keep: Callable[[str], bool] | None = None,
                     source: str = "model.bin") -> CT2Model:
    """Parse a CTranslate2 model from a binary stream.

    Parameters
    ----------
    fh : binary file object
        Positioned at the start of the file; read strictly sequentially.
    keep : callable, optional
        ``keep(name) -> bool`` selects the variables to keep (their bytes are read anyway);
        default keeps all.
    source : str
        Name used in error messages.

    Returns
    -------
    CT2Model

    Raises
    ------
    FeatureError
        Unknown version or data type, or a truncated file.
    """

    def u(fmt: str) -> int:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, _read_exact(fh, size, source))[0]

    def string() -> str:
        n = u("H")
        raw = _read_exact(fh, n, source)
        return raw[:-1].decode("utf-8")

    version = u("I")
    if version not in _SUPPORTED_VERSIONS:
        raise FeatureError(
            f"{source}: CTranslate2 binary version {version} is not supported "
            f"(expected one of {_SUPPORTED_VERSIONS}); reconvert the model with ctranslate2 4.x"
        )
    spec = string() if version >= 2 else ""
    revision = u("I") if version >= 2 else 1
    model = CT2Model(spec=spec, revision=revision, binary_version=version)
    n_vars = u("I")
    skip = bytearray(1 << 20)
    for _ in range(n_vars):
        name = string()
        ndims = u("B")
        shape = tuple(u("I") for _ in range(ndims))
        dtype_id = u("B")
        n_bytes = u("I")
        model.names.append(name)
        if keep is None or keep(name):
            raw = _read_exact(fh, n_bytes, source)
            if dtype_id == _BFLOAT16:
                arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif dtype_id in _DTYPES:
                arr = np.frombuffer(raw, dtype=_DTYPES[dtype_id])
            else:
                raise FeatureError(
                    f"{source}: variable {name!r} has unknown CTranslate2 dtype id {dtype_id}; "
                    f"reconvert the model with float16, float32 or int8 weights"
                )
            expected = int(np.prod(shape)) if shape else 1
            if arr.size != expected:
                raise FeatureError(
                    f"{source}: variable {name!r} holds {arr.size} values for shape {shape}; "
                    f"the file is corrupt, reinstall it"
                )
            model.variables[name] = arr.reshape(shape).copy()
        else:
            left = n_bytes
            while left:
                chunk = memoryview(skip)[: min(left, len(skip))]
                got = fh.readinto(chunk)
                if not got:
                    raise FeatureError(
                        f"{source}: truncated CTranslate2 model file; reinstall the package"
                    )
                left -= got
    if version >= 3:
        n_alias = u("I")
        for _ in range(n_alias):
            alias = string()
            model.aliases[alias] = string()
    return model
