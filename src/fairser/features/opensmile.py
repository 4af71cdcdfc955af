"""openSMILE frontends: eGeMAPS and ComParE low-level descriptors, eGeMAPS functionals.

* ``egemaps-lld``: eGeMAPSv02 LLDs, 25 per 10 ms frame.
* ``compare-lld``: ComParE_2016 LLDs, 65 per 10 ms frame. Some (e.g. the FFT spectral variance,
  up to ~1e7) overflow float16, so this frontend stores float32 unless told otherwise.
* ``egemaps-functionals``: the 88 eGeMAPSv02 functionals of the whole utterance (``T = 1``).

openSMILE runs on one core per call; :func:`fairser.features.extract` parallelises it with
``workers`` processes, each holding its own ``opensmile.Smile``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fairser.errors import FeatureError
from fairser.features._options import FrontendOptions, parse_options
from fairser.features.base import Frontend, LayerSpec, normalize_layers

__all__ = ["OpenSmileFrontend", "egemaps_lld", "compare_lld", "egemaps_functionals"]

# name -> (opensmile feature set, feature level, dimension, frame rate, storage dtype)
_SETS: dict[str, tuple[str, str, int, float, str]] = {
    "egemaps-lld": ("eGeMAPSv02", "LowLevelDescriptors", 25, 100.0, "float16"),
    "compare-lld": ("ComParE_2016", "LowLevelDescriptors", 65, 100.0, "float32"),
    "egemaps-functionals": ("eGeMAPSv02", "Functionals", 88, 0.0, "float16"),
}


class OpenSmileOptions(FrontendOptions):
    """Options of the openSMILE frontends (none yet: the feature sets are fixed standards)."""


class OpenSmileFrontend(Frontend):
    """An openSMILE feature set as ``(1, T, D)`` frames.

    Parameters
    ----------
    name : str
        ``"egemaps-lld"``, ``"compare-lld"`` or ``"egemaps-functionals"``.
    layers : int, list of int, "all" or None
        Only layer 0 exists.
    cache_dir : object
        Unused (accepted like every frontend's factory).
    """

    batched = False
    sample_rate = 16000
    version = 1

    def __init__(self, name: str, *, layers: LayerSpec = None, cache_dir: object = None,
                 **options: Any) -> None:
        if name not in _SETS:
            raise FeatureError(f"unknown openSMILE frontend {name!r}; choose one of "
                               f"{', '.join(_SETS)}")
        self.name = name
        self.options = parse_options(OpenSmileOptions, options, frontend=name)
        feature_set, level, self._dim, self.frame_rate, self.store_dtype = _SETS[name]
        self._feature_set, self._level = feature_set, level
        self.layers = normalize_layers(layers, 1, frontend=name)
        self._smile = None

    @property
    def n_layers(self) -> int:
        """One layer."""
        return 1

    @property
    def dim(self) -> int:
        """Number of descriptors."""
        return self._dim

    def config(self) -> dict[str, Any]:
        """Feature set, level, opensmile version and algorithm version."""
        import opensmile

        return {"frontend": self.name, "version": self.version, "feature_set": self._feature_set,
                "level": self._level, "opensmile": opensmile.__version__}

    def load(self) -> None:
        """Create the ``opensmile.Smile`` object."""
        if self._smile is None:
            import opensmile

            self._smile = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, self._feature_set),
                feature_level=getattr(opensmile.FeatureLevel, self._level),
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_smile"] = None  # native object: rebuilt in each worker
        return state

    def process(self, signal: np.ndarray) -> np.ndarray:
        """``(T, D)`` float32 descriptors of one 16 kHz signal (the bare openSMILE call)."""
        self.load()
        assert self._smile is not None
        with warnings.catch_warnings():  # openSMILE warns and returns NaN for short segments
            warnings.simplefilter("ignore", UserWarning)
            frame = self._smile.process_signal(signal, self.sample_rate)
        values = frame.to_numpy(dtype=np.float32)
        if values.shape[0] == 0 or np.isnan(values).all():
            raise FeatureError(
                f"{self.name}: audio too short for openSMILE ({len(signal)} samples gave no "
                f"frame); remove the file from the corpus")
        return values

    def compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """``(1, T, D)`` descriptors of each signal."""
        return [self.process(s)[None] for s in signals]


def egemaps_lld(*, layers: LayerSpec = None, cache_dir: object = None,
                **options: Any) -> OpenSmileFrontend:
    """The ``egemaps-lld`` frontend (registry factory)."""
    return OpenSmileFrontend("egemaps-lld", layers=layers, cache_dir=cache_dir, **options)


def compare_lld(*, layers: LayerSpec = None, cache_dir: object = None,
                **options: Any) -> OpenSmileFrontend:
    """The ``compare-lld`` frontend (registry factory)."""
    return OpenSmileFrontend("compare-lld", layers=layers, cache_dir=cache_dir, **options)


def egemaps_functionals(*, layers: LayerSpec = None, cache_dir: object = None,
                        **options: Any) -> OpenSmileFrontend:
    """The ``egemaps-functionals`` frontend (registry factory)."""
    return OpenSmileFrontend("egemaps-functionals", layers=layers, cache_dir=cache_dir,
                             **options)
