"""Quadratic concept erasure of gender (``QuadraticGenderEraser``), gender known at use.

LEACE (:class:`~fairser.levers.GenderEraser`) equalises the genders' MEANS, so no linear probe
reads gender; a small MLP still does when the genders differ in their spread (measured on
per-speaker-normalised whisper features of ASED: linear probe 0.50, MLP probe 0.94). The
quadratic eraser of ``concept-erasure`` (Belrose et al., 2023, "QLEACE") moves each gender's
rows onto the genders' common barycenter with the optimal-transport map between Gaussians,
so means AND covariances coincide: ``x -> (x - mean_g) T_g^T + mean``. It must know each
row's gender when applied (the per-gender decision thresholds need it too); rows of a gender
not seen by ``fit`` (or missing) are left unchanged and counted in ``last_unchanged``.
``strength`` w applies ``x + w (x' - x)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from fairser.levers._base import LeverError, check_strength, pack, register, unpack
from fairser.levers.erasure import frame_chunks

__all__ = ["QuadraticGenderEraser"]

_MISSING = {"<NA>", "nan", "None", ""}


@register
class QuadraticGenderEraser:
    """Match every gender's mean and covariance to their barycenter (QLEACE, oracle gender).

    Parameters
    ----------
    strength : float, default 1.0
        Fraction of the edit applied (0: identity, 1: full).
    shrinkage : bool, default True
        Shrink each gender's covariance (``concept-erasure``'s default), needed when rows
        are few against the width.
    """

    kind: ClassVar[str] = "quadratic-gender-eraser"

    def __init__(self, *, strength: float = 1.0, shrinkage: bool = True) -> None:
        self.strength = check_strength(strength)
        self.shrinkage = bool(shrinkage)
        self.classes: list[str] = []
        self._means: np.ndarray | None = None  # (k, d)
        self._centre: np.ndarray | None = None  # (d,)
        self._maps: np.ndarray | None = None  # (k, d, d)
        self.last_unchanged = 0

    def _codes(self, values: Sequence[Any], n: int) -> np.ndarray:
        labels = np.asarray([str(v) for v in values], dtype=object)
        if len(labels) != n:
            raise LeverError(f"sensitive_features has {len(labels)} values for {n} rows; "
                             "pass one per row")
        if _MISSING & set(labels.tolist()):
            raise LeverError("sensitive_features holds a missing value; drop rows without a "
                             "gender before fitting the eraser")
        self.classes = sorted(set(labels.tolist()))
        return np.searchsorted(np.asarray(self.classes, dtype=object), labels)

    def _check_counts(self, counts: Sequence[int], what: str) -> None:
        if len(self.classes) < 2 or min(counts) < 2:
            raise LeverError(f"{what} per group {dict(zip(self.classes, counts, strict=True))}:"
                             f" the quadratic eraser needs two or more groups of 2+ {what} each")

    def _fitter(self, width: int) -> Any:
        with warnings.catch_warnings():  # the package's other modules use torch.jit.script
            warnings.simplefilter("ignore", DeprecationWarning)
            from concept_erasure import QuadraticFitter

        return QuadraticFitter(width, len(self.classes), dtype=torch.float64,
                               shrinkage=self.shrinkage)

    def _finish(self, fitter: Any) -> QuadraticGenderEraser:
        eraser = fitter.eraser
        self._means = eraser.class_means.numpy().astype(np.float64)
        self._centre = eraser.global_mean.numpy().astype(np.float64)
        self._maps = eraser.ot_maps.numpy().astype(np.float64)
        return self

    def fit(self, x: Any, *, sensitive_features: Sequence[Any]) -> QuadraticGenderEraser:
        """Fit on pooled rows ``(n, E)`` with each row's gender (source and target)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or not np.isfinite(x).all():
            raise LeverError(f"x has shape {x.shape} or non-finite values; expected finite "
                             "(n, E)")
        codes = self._codes(sensitive_features, len(x))
        self._check_counts(np.bincount(codes, minlength=len(self.classes)).tolist(), "rows")
        fitter = self._fitter(x.shape[1])
        fitter.update(torch.from_numpy(x), torch.from_numpy(codes.astype(np.int64)))
        return self._finish(fitter)

    def fit_frames(self, items: Iterable[Any], *, sensitive_features: Sequence[Any]
                   ) -> QuadraticGenderEraser:
        """Fit on frames: each frame vector is a sample with its utterance's gender.

        The items are streamed (a generator is read one item at a time) and the
        class-conditional moments updated in chunks of a bounded number of frames
        (:func:`fairser.levers.erasure.frame_chunks`); the result is :meth:`fit` on all the
        frame vectors stacked, within float tolerance.

        Parameters
        ----------
        items : iterable of ndarray
            ``(L, T, D)`` or ``(T, D)`` frames per utterance (the eraser works on ``L * D``).
        sensitive_features : sequence
            Gender of each utterance (as many as ``items``).
        """
        labels = list(sensitive_features)
        codes = self._codes(labels, len(labels))
        if len(self.classes) < 2:
            raise LeverError(f"sensitive_features holds only {self.classes}; the quadratic "
                             "eraser needs two or more groups")
        fitter = None
        for x, c in frame_chunks(items, codes):
            fitter = fitter or self._fitter(x.shape[1])
            fitter.update(torch.from_numpy(x), torch.from_numpy(c))
        if fitter is None:
            raise LeverError("no frames to fit on; pass items with at least one frame")
        self._check_counts([int(v) for v in fitter.n.tolist()], "frames")
        return self._finish(fitter)

    def transform(self, x: Any, *, groups: Sequence[Any]) -> np.ndarray:
        """Erase from pooled rows ``(n, E)`` given each row's gender (float32 out)."""
        if self._maps is None:
            raise LeverError("QuadraticGenderEraser is not fitted; call fit() first (or load "
                             "a fitted one)")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._centre.size:
            raise LeverError(f"x has shape {x.shape}; the eraser was fitted on width "
                             f"{self._centre.size}")
        labels = np.asarray([str(v) for v in groups], dtype=object)
        if len(labels) != len(x):
            raise LeverError(f"groups has {len(labels)} values for {len(x)} rows; pass one "
                             "gender per row")
        out = x.copy()
        for i, name in enumerate(self.classes):
            rows = labels == name
            moved = (x[rows] - self._means[i]) @ self._maps[i].T + self._centre
            out[rows] = x[rows] + self.strength * (moved - x[rows])
        self.last_unchanged = int((~np.isin(labels, self.classes)).sum())
        return out.astype(np.float32)

    def to_dict(self, *, lists: bool = False) -> dict[str, Any]:
        """Serialised form (:mod:`fairser.levers._base`)."""
        if self._maps is None:
            raise LeverError("QuadraticGenderEraser is not fitted; nothing to save")
        return pack(self.kind, options={"strength": self.strength, "shrinkage": self.shrinkage},
                    state={"classes": self.classes},
                    arrays={"class_means": self._means, "centre": self._centre,
                            "ot_maps": self._maps}, lists=lists)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuadraticGenderEraser:
        """Inverse of :meth:`to_dict`."""
        options, state, a = unpack(d, cls.kind, ("class_means", "centre", "ot_maps"))
        lever = cls(**options)
        lever.classes = [str(c) for c in state.get("classes", [])]
        lever._means = a["class_means"].astype(np.float64)
        lever._centre = a["centre"].astype(np.float64).reshape(-1)
        lever._maps = a["ot_maps"].astype(np.float64)
        k, d = len(lever.classes), lever._centre.size
        if lever._means.shape != (k, d) or lever._maps.shape != (k, d, d):
            raise LeverError("serialised quadratic-gender-eraser: shapes disagree with its "
                             "classes and width; refit the lever")
        return lever
