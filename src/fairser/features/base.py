"""The one small interface every frontend implements.

A frontend turns mono float32 signals at its :attr:`Frontend.sample_rate` into frame features
of shape ``(L, T, D)`` (``L`` kept layers, ``T`` frames, ``D`` dimensions). Frontends are cheap
to construct: heavy state (model weights, openSMILE objects) is created on first use by
:meth:`Frontend.load`, so a fully cached extraction never loads a model.

Two execution styles exist:

* ``batched = True`` (neural encoders): the extractor groups utterances of similar length and
  calls :meth:`Frontend.compute` in the main process; torch uses the available cores.
* ``batched = False`` (openSMILE, log-mel): utterances are independent and cheap; the extractor
  may run them in worker processes, which receive the (unloaded, picklable) frontend.

Neural frontends (``accelerated = True``) compute where their :class:`Runtime` says: one code
path, parameterised by ``runtime.device`` and ``runtime.precision`` (autocast through
:class:`fairser.device.PrecisionPlan`), with no separate GPU branch. Precision changes the
numbers, so a non-fp32 precision is part of :meth:`Frontend.config` (a separate store entry);
the device is not (cpu and cuda fp32 compute the same function to float rounding and share
entries; the device used is logged per run in the store's ``extractions.jsonl``).
"""

from __future__ import annotations

import abc
import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fairser._hashing import config_hash
from fairser.errors import ConfigError

__all__ = ["Frontend", "LayerSpec", "Runtime", "normalize_layers", "config_hash"]

#: What callers may pass as ``layers``: ``None`` (the frontend's default, usually the last
#: layer), one index, a list of indices (negative counts from the end), or ``"all"``.
LayerSpec = int | Sequence[int] | Literal["all"] | None


def normalize_layers(layers: LayerSpec, n_layers: int, *, frontend: str) -> tuple[int, ...]:
    """Turn a user's layer choice into sorted, unique, non-negative indices.

    Parameters
    ----------
    layers : int, sequence of int, "all" or None
        ``None`` keeps the last layer; negative indices count from the end.
    n_layers : int
        Number of layers the frontend exposes (for transformer encoders: the embedding output
        plus one per block, as in ``output_hidden_states``).
    frontend : str
        Frontend name, used in error messages.

    Returns
    -------
    tuple of int

    Raises
    ------
    ConfigError
        An index is out of range, the list is empty, or the value has the wrong type.
    """
    if layers is None:
        return (n_layers - 1,)
    if isinstance(layers, str):
        if layers.strip().lower() == "all":
            return tuple(range(n_layers))
        try:
            parsed = [int(p) for p in layers.replace(" ", "").split(",") if p]
        except ValueError:
            raise ConfigError(
                f"frontend {frontend}: layers={layers!r} is not understood; "
                f"pass an index, a comma-separated list of indices or 'all'"
            ) from None
        return normalize_layers(parsed, n_layers, frontend=frontend)
    if isinstance(layers, bool) or not isinstance(layers, int | Sequence | np.integer):
        raise ConfigError(
            f"frontend {frontend}: layers={layers!r} has the wrong type; "
            f"pass an int, a list of ints or 'all'"
        )
    items = [layers] if isinstance(layers, int | np.integer) else list(layers)
    if not items:
        raise ConfigError(f"frontend {frontend}: layers is empty; pass at least one layer index")
    out: set[int] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise ConfigError(
                f"frontend {frontend}: layer {item!r} is not an integer; pass ints or 'all'"
            )
        idx = int(item) + n_layers if int(item) < 0 else int(item)
        if not 0 <= idx < n_layers:
            raise ConfigError(
                f"frontend {frontend}: layer {int(item)} is out of range; "
                f"it has {n_layers} layers (0..{n_layers - 1}, or negative from the end)"
            )
        out.add(idx)
    return tuple(sorted(out))


@dataclass(frozen=True)
class Runtime:
    """Where and how a neural frontend computes (set by :func:`fairser.features.extract`).

    Attributes
    ----------
    device : str
        A resolved torch device (``"cpu"``, ``"cuda:0"``, ``"mps"``).
    precision : str
        The effective precision on that device (``fp32``, ``bf16`` or ``fp16``; see
        :func:`fairser.device.resolve_precision`).
    batch_seconds : float
        Padded audio seconds per forward (bounds peak memory).
    """

    device: str = "cpu"
    precision: str = "fp32"
    batch_seconds: float = 60.0

    def torch_device(self):
        """``torch.device(self.device)``."""
        import torch

        return torch.device(self.device)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The precision's autocast context on the device (a no-op for fp32)."""
        from fairser.device import resolve_precision

        device = self.torch_device()
        with resolve_precision(self.precision, device).autocast(device):
            yield


class Frontend(abc.ABC):
    """Base class of feature frontends.

    Subclasses set the class attributes and implement :meth:`config`, :meth:`load` and
    :meth:`compute`. Instances must be picklable before :meth:`load` (workers rebuild them).

    Attributes
    ----------
    name : str
        Registry name (e.g. ``"whisper-base"``).
    sample_rate : int
        Rate of the signals :meth:`compute` expects.
    frame_rate : float
        Frames per second of the output; ``0.0`` for utterance-level functionals (``T = 1``).
    batched : bool
        Whether :meth:`compute` benefits from several utterances at once (neural encoders).
    layers : tuple of int
        Kept layer indices (set by the constructor).
    store_dtype : str
        Storage dtype used when :func:`fairser.features.extract` is not told one
        (``"float16"`` unless the values overflow it).
    accelerated : bool
        Whether :attr:`runtime` (device, precision) applies; per-file frontends compute on the
        CPU in float32 whatever the runtime says.
    runtime : Runtime
        Device, precision and batch size (default: CPU, fp32, 60 s).
    """

    name: str = ""
    sample_rate: int = 16000
    frame_rate: float = 100.0
    batched: bool = False
    layers: tuple[int, ...] = (0,)
    store_dtype: str = "float16"
    accelerated: bool = False
    runtime: Runtime = Runtime()

    @property
    @abc.abstractmethod
    def n_layers(self) -> int:
        """Number of layers available to choose from."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Feature dimension ``D``."""

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable description of everything that changes the output.

        It is hashed into the store key: change any output-relevant setting, weight file or
        algorithm version and every entry is recomputed.
        """

    def load(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Create heavy state (weights, native objects). Called once before :meth:`compute`."""

    @abc.abstractmethod
    def compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Features of each signal.

        Parameters
        ----------
        signals : list of numpy.ndarray
            1-D float32 mono signals at :attr:`sample_rate`.

        Returns
        -------
        list of numpy.ndarray
            One float32 ``(len(layers), T, dim)`` array per signal.
        """

    def with_layers(self, layers: LayerSpec) -> Frontend:
        """A copy of this frontend keeping ``layers`` instead (heavy state is shared)."""
        clone = copy.copy(self)
        clone.layers = normalize_layers(layers, self.n_layers, frontend=self.name)
        return clone

    def with_runtime(self, runtime: Runtime) -> Frontend:
        """A copy computing with ``runtime``; heavy state is shared unless device or precision
        change (then the copy loads its own on first use)."""
        clone = copy.copy(self)
        if (runtime.device, runtime.precision) != (self.runtime.device, self.runtime.precision):
            clone.release()
        clone.runtime = runtime
        return clone

    def release(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Drop heavy state (weights) so that the next :meth:`load` creates it anew."""

    def min_samples(self) -> int:
        """Shortest signal (in samples) the frontend accepts; shorter ones are reported as bad."""
        return 1

    def key(self) -> str:
        """Hex digest of :meth:`config` (the store folder of this configuration)."""
        return config_hash(self.config())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, layers={self.layers})"
