"""What every lever shares: its error, its serialised form, and saving/loading it.

A fitted lever is small: a few arrays (statistics, projection matrices) plus JSON-able
options. ``lever.to_dict()`` returns ``{"kind", "version", "options", "state", "arrays"}``
where ``arrays`` maps names to numpy arrays (or, with ``lists=True``, to nested lists, so the
whole dict is JSON); ``Lever.from_dict(d)`` accepts either. :func:`save_lever` writes one
safetensors file (the arrays as tensors, the rest as JSON in the file's metadata) and
:func:`load_lever` reads it back into the right class, without pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from fairser._io import atomic_path
from fairser.errors import FairserError

__all__ = ["LeverError", "Lever", "load_lever", "save_lever", "check_strength", "LEVERS"]

#: Version of the serialised form (bumped when a lever's fields change meaning).
FORMAT_VERSION = 1
_META_KEY = "fairser_lever"


class LeverError(FairserError):
    """A lever cannot be fitted or applied on the given data (one-line message with the fix)."""


class Lever(Protocol):
    """The interface of a lever class (fit/transform objects with a serialised form)."""

    kind: ClassVar[str]

    def to_dict(self, *, lists: bool = False) -> dict[str, Any]:
        """Serialised form (see the module docstring)."""
        ...

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lever:
        """Inverse of :meth:`to_dict`."""
        ...


#: kind -> lever class; filled by each lever module at import (one registry line each).
LEVERS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator adding a lever class to :data:`LEVERS` under its ``kind``."""
    LEVERS[cls.kind] = cls
    return cls


def check_strength(strength: float, *, name: str = "strength") -> float:
    """Return ``strength`` as a float in [0, 1]; raise :class:`LeverError` otherwise."""
    value = float(strength)
    if not 0.0 <= value <= 1.0:
        raise LeverError(f"{name}={strength!r} must be in [0, 1] (0: lever off, 1: full)")
    return value


def pack(kind: str, *, options: Mapping[str, Any], state: Mapping[str, Any],
         arrays: Mapping[str, np.ndarray], lists: bool) -> dict[str, Any]:
    """Build the serialised dict of a lever."""
    out = {k: (np.asarray(v).tolist() if lists else np.asarray(v)) for k, v in arrays.items()}
    return {"kind": kind, "version": FORMAT_VERSION, "options": dict(options),
            "state": dict(state), "arrays": out}


def unpack(d: Mapping[str, Any], kind: str, names: tuple[str, ...]) -> tuple[
        dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """Check a serialised dict of ``kind``; return ``(options, state, arrays)``."""
    if not isinstance(d, Mapping) or d.get("kind") != kind:
        got = d.get("kind") if isinstance(d, Mapping) else type(d).__name__
        raise LeverError(f"not a serialised {kind!r} lever (kind={got!r}); pass the dict "
                         f"written by its to_dict()")
    if d.get("version") != FORMAT_VERSION:
        raise LeverError(f"{kind} lever of format version {d.get('version')!r}; this fairser "
                         f"reads version {FORMAT_VERSION}: refit the lever")
    arrays = d.get("arrays") or {}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise LeverError(f"serialised {kind} lever lacks array(s) {missing}; refit the lever")
    return dict(d.get("options") or {}), dict(d.get("state") or {}), {
        n: np.asarray(arrays[n]) for n in names}


def save_lever(lever: Any, path: str | Path) -> Path:
    """Atomically save a fitted lever as one safetensors file.

    Parameters
    ----------
    lever : a lever object
        Anything with ``to_dict()`` (:class:`~fairser.levers.SpeakerNorm`,
        :class:`~fairser.levers.GenderEraser`, :class:`~fairser.levers.GroupThresholds`).
    path : str or Path
        Destination, conventionally ``*.safetensors``.

    Returns
    -------
    Path
    """
    from safetensors.numpy import save_file

    d = lever.to_dict()
    arrays = {k: np.ascontiguousarray(v) for k, v in d.pop("arrays").items()}
    for k, v in arrays.items():
        if v.dtype.kind not in "biuf":
            raise LeverError(f"{d['kind']} lever array {k!r} has dtype {v.dtype}; only numbers "
                             "can be saved")
    path = Path(path)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(arrays, str(tmp), metadata={_META_KEY: json.dumps(d, sort_keys=True)})
    return path


def load_lever(path: str | Path) -> Any:
    """Load a lever written by :func:`save_lever` (its class is read from the file).

    Raises
    ------
    LeverError
        When the file is unreadable, is not a fairser lever, or names an unknown kind.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = json.loads((fh.metadata() or {})[_META_KEY])
            arrays = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError) as exc:
        raise LeverError(f"{path}: not a readable fairser lever ({type(exc).__name__}); "
                         "save it again with fairser.levers.save_lever") from None
    cls = LEVERS.get(meta.get("kind"))
    if cls is None:
        raise LeverError(f"{path}: unknown lever kind {meta.get('kind')!r}; known kinds are "
                         f"{sorted(LEVERS)}")
    return cls.from_dict({**meta, "arrays": arrays})
