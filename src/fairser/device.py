"""The one place that turns ``device`` and ``precision`` options into torch objects.

``device: auto | cpu | cuda | cuda:N | mps`` (``auto``: CUDA when available, then MPS, else
CPU) and ``precision: fp32 | bf16 | fp16`` are options of extraction, training and predict.
Every code path takes the resolved device as a parameter; there is no separate GPU branch.
Mixed precision is autocast on CUDA; elsewhere ``bf16`` autocasts on CPU and ``fp16`` falls
back to fp32 (CPU has no fast fp16 kernels), which :func:`resolve_precision` reports.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator

from fairser.errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]
DEVICE_CHOICES = "auto | cpu | cuda | cuda:N | mps"
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(name: str) -> str:
    """``name`` when it is a valid device option, else a :class:`ConfigError` naming the choices."""
    if not isinstance(name, str) or not _DEVICE_RE.match(name):
        raise ConfigError(f"device {name!r} is not one of {DEVICE_CHOICES}")
    return name


def _device_field(name: str) -> str:
    try:
        return check_device_name(name)
    except ConfigError as exc:  # pydantic reports ValueError as a field error
        raise ValueError(str(exc)) from None


#: A config field holding a device option (checked by :func:`check_device_name`).
DeviceName = Annotated[str, AfterValidator(_device_field)]


def resolve_device(name: str = "auto"):
    """The ``torch.device`` for a device option; a clear error when it is not available here.

    Parameters
    ----------
    name : str, default "auto"
        One of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

    Raises
    ------
    ConfigError
        For an unknown name, or an accelerator that this machine does not have.
    """
    import torch

    check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA device is available here; "
                              "use device: auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA "
                              "device(s) here; use cuda:0 .. cuda:N-1")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps': MPS is not available here; use device: auto or cpu")
    return torch.device(name)


@dataclass(frozen=True)
class PrecisionPlan:
    """How a precision option runs on a device.

    Attributes
    ----------
    requested, effective : str
        The option as given, and what actually runs (``fp16`` on CPU runs as ``fp32``).
    autocast_dtype : torch.dtype or None
        Dtype for ``torch.autocast``; ``None`` for fp32.
    use_grad_scaler : bool
        True for fp16 on CUDA (loss scaling against underflow).
    """

    requested: str
    effective: str
    autocast_dtype: object | None
    use_grad_scaler: bool

    @contextlib.contextmanager
    def autocast(self, device) -> Iterator[None]:
        """Autocast context for ``device`` (a no-op for fp32)."""
        import torch

        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(device_type=device.type, dtype=self.autocast_dtype):
            yield


def resolve_precision(precision: str, device) -> PrecisionPlan:
    """The :class:`PrecisionPlan` of ``precision`` on a resolved ``device``."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {' | '.join(PRECISIONS)}")
    if precision == "fp32":
        return PrecisionPlan("fp32", "fp32", None, False)
    if precision == "bf16":
        return PrecisionPlan("bf16", "bf16", torch.bfloat16, False)
    if device.type == "cuda":
        return PrecisionPlan("fp16", "fp16", torch.float16, True)
    return PrecisionPlan("fp16", "fp32", None, False)


def device_metadata(device, plan: PrecisionPlan) -> dict[str, str]:
    """What to record in a run's metadata: the device used, its name, and the precision."""
    import torch

    meta = {"device": str(device), "precision": plan.effective,
            "precision_requested": plan.requested}
    if device.type == "cuda":
        meta["device_name"] = torch.cuda.get_device_name(device)
    return meta
