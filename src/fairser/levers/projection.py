"""A label-free principal subspace (``PrincipalSubspace``) to erase gender in.

Pooled features keep gender in many low-variance directions, where a covariance fitted on a
few thousand rows is too noisy for :class:`~fairser.levers.QuadraticGenderEraser` to match
the genders' spreads (measured on ASED, whisper-base layer 2, 512 dimensions: MLP gender probe
0.63 after quadratic erasure). Projecting first onto the leading principal directions of the
source and target rows (no labels read) and erasing there brings the probe to 0.46-0.55 at no
emotion-recognition cost (docs/levers.md). The output has ``n_components`` columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fairser.levers._base import LeverError, pack, register, unpack

__all__ = ["PrincipalSubspace"]


@register
class PrincipalSubspace:
    """Centre and project pooled rows onto their leading principal directions.

    Parameters
    ----------
    n_components : int, default 128
        Number of directions kept (the lever's knob: there is no ``strength``, since the
        width changes; ``n_components`` equal to the width keeps everything, rotated).
    """

    kind: ClassVar[str] = "principal-subspace"

    def __init__(self, *, n_components: int = 128) -> None:
        if int(n_components) < 1:
            raise LeverError(f"n_components={n_components} must be >= 1; e.g. 128")
        self.n_components = int(n_components)
        self._mean: np.ndarray | None = None
        self._basis: np.ndarray | None = None  # (k, d)
        self.explained: float | None = None

    def fit(self, x: Any) -> PrincipalSubspace:
        """Fit on pooled rows ``(n, E)`` (e.g. source and target together; no labels)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or not np.isfinite(x).all():
            raise LeverError(f"x has shape {x.shape} or non-finite values; expected finite "
                             "(n, E)")
        k = self.n_components
        if k > min(x.shape):
            raise LeverError(f"n_components={k} exceeds min(rows, width)={min(x.shape)}; use "
                             "fewer components")
        self._mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - self._mean, full_matrices=False)
        signs = np.sign(vt[:k, np.abs(vt[:k]).argmax(axis=1)].diagonal())  # deterministic sign
        self._basis = vt[:k] * np.where(signs == 0, 1.0, signs)[:, None]
        self.explained = float(np.square(s[:k]).sum() / max(np.square(s).sum(), 1e-300))
        return self

    def transform(self, x: Any) -> np.ndarray:
        """Coordinates ``(n, n_components)`` (float32) of centred rows in the subspace."""
        if self._basis is None:
            raise LeverError("PrincipalSubspace is not fitted; call fit() first (or load one)")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._mean.size:
            raise LeverError(f"x has shape {x.shape}; the subspace was fitted on width "
                             f"{self._mean.size}")
        return ((x - self._mean) @ self._basis.T).astype(np.float32)

    def to_dict(self, *, lists: bool = False) -> dict[str, Any]:
        """Serialised form (:mod:`fairser.levers._base`)."""
        if self._basis is None:
            raise LeverError("PrincipalSubspace is not fitted; nothing to save")
        return pack(self.kind, options={"n_components": self.n_components},
                    state={"explained": self.explained},
                    arrays={"mean": self._mean, "basis": self._basis}, lists=lists)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrincipalSubspace:
        """Inverse of :meth:`to_dict`."""
        options, state, a = unpack(d, cls.kind, ("mean", "basis"))
        lever = cls(**options)
        lever._mean = a["mean"].astype(np.float64).reshape(-1)
        lever._basis = a["basis"].astype(np.float64)
        lever.explained = state.get("explained")
        if lever._basis.shape != (lever.n_components, lever._mean.size):
            raise LeverError("serialised principal-subspace: basis shape disagrees with "
                             "n_components and width; refit the lever")
        return lever
