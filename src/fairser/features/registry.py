"""Frontend registry: name -> factory. Adding a frontend is one file plus one line here.

Factories are referenced as ``"module:attribute"`` strings and imported on first use, so asking
for ``logmel`` never imports transformers' Whisper code or openSMILE.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fairser.errors import ConfigError
from fairser.features.base import Frontend, LayerSpec

__all__ = ["FRONTENDS", "build_frontend", "frontend_names"]

#: Registered frontends. ``hf:<hub id or folder>`` is handled separately (any HF encoder).
FRONTENDS: MappingProxyType[str, str] = MappingProxyType({
    "whisper-base": "fairser.features.whisper:whisper_base",
    "whisper-tiny.en": "fairser.features.whisper:whisper_tiny_en",
    "logmel": "fairser.features.logmel:LogMelFrontend",
    "egemaps-lld": "fairser.features.opensmile:egemaps_lld",
    "compare-lld": "fairser.features.opensmile:compare_lld",
    "egemaps-functionals": "fairser.features.opensmile:egemaps_functionals",
})

HF_PREFIX = "hf:"


def frontend_names() -> list[str]:
    """Registered names plus the ``hf:<model>`` pattern."""
    return [*FRONTENDS, "hf:<hub id or local folder>"]


def build_frontend(name: str, *, layers: LayerSpec = None, options: dict[str, Any] | None = None,
                   cache_dir: str | Path | None = None) -> Frontend:
    """Construct a frontend by name (cheap: weights load on first :meth:`Frontend.compute`).

    Parameters
    ----------
    name : str
        A key of :data:`FRONTENDS` or ``"hf:<hub id or local folder>"``.
    layers : int, list of int, "all" or None
        Layer choice (see :func:`fairser.features.base.normalize_layers`).
    options : dict, optional
        Frontend-specific options (validated; unknown keys are errors).
    cache_dir : str or Path, optional
        Cache root (converted weights are kept there).

    Returns
    -------
    Frontend

    Raises
    ------
    ConfigError
        Unknown name or invalid options.
    """
    opts = dict(options or {})
    if name.startswith(HF_PREFIX):
        from fairser.features.hf import HFFrontend

        return HFFrontend(name[len(HF_PREFIX):], layers=layers, cache_dir=cache_dir, **opts)
    target = FRONTENDS.get(name)
    if target is None:
        raise ConfigError(
            f"unknown frontend {name!r}; choose one of {', '.join(frontend_names())}")
    module, attr = target.split(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(layers=layers, cache_dir=cache_dir, **opts)
