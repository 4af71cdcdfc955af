"""Linear concept erasure of gender with LEACE (``GenderEraser``).

LEACE (Belrose et al., 2023, "LEACE: Perfect linear concept erasure in closed form"; the
``concept-erasure`` package) fits the least-squares-smallest affine edit
``x -> x - P (x - mean)`` after which NO linear classifier predicts the concept from the
features better than a constant (on the fitting distribution). It needs the concept's labels
(gender: of the source and of the unlabelled target, which the methods use anyway) and never
emotion labels.

It can be fitted on pooled rows ``(n, E)`` (utterance embeddings, mean-pooled features) or on
frames: every frame vector (the layers of one frame, flattened to ``L * D``) is a sample with
its utterance's gender. The fitted eraser applies to either form with the same width.
``strength`` w scales the edit: ``x - w P (x - mean)`` (0: off, 1: full erasure).
LEACE removes only LINEAR information: a non-linear probe
(:func:`fairser.metrics.probe.mlp_gender_probe`) can still find gender afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from fairser.levers._base import LeverError, check_strength, pack, register, unpack

__all__ = ["GenderEraser"]

_CHUNK_BYTES = 1 << 20  # float64 frame vectors per update of a frame fit: about 1 MiB...
_MIN_CHUNK_FRAMES = 256  # ...but at least this many frames (wide features)


def _frames_2d(item: Any, i: int) -> np.ndarray:
    """An item as ``(T, L*D)`` frame vectors."""
    x = np.asarray(item)
    if x.ndim == 2:
        return x
    if x.ndim == 3:
        return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    raise LeverError(f"item {i} has shape {x.shape}; expected frames (L, T, D) or (T, D)")


def frame_chunks(items: Iterable[Any], codes: np.ndarray
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Frame vectors of ``items`` in bounded chunks, each frame with its item's code.

    Items are consumed one at a time (a generator is never listed) and copied into one
    reused float64 buffer of about ``_CHUNK_BYTES``; a chunk is valid until the next one.

    Parameters
    ----------
    items : iterable of ndarray
        ``(L, T, D)`` or ``(T, D)`` frames per item.
    codes : numpy.ndarray of int
        One code (concept label) per item.

    Yields
    ------
    tuple of numpy.ndarray
        ``(m, L*D)`` float64 frame vectors and their ``(m,)`` int64 codes.
    """
    buf = lab = None
    held = n = 0
    for i, item in enumerate(items):
        if i >= len(codes):
            raise LeverError(f"more items than the {len(codes)} sensitive_features; pass one "
                             "gender per item")
        f = _frames_2d(item, i)
        if buf is None:
            rows = max(_MIN_CHUNK_FRAMES, _CHUNK_BYTES // (8 * max(f.shape[1], 1)))
            buf, lab = np.empty((rows, f.shape[1])), np.empty(rows, dtype=np.int64)
        elif f.shape[1] != buf.shape[1]:
            raise LeverError(f"item {i} has {f.shape[1]} values per frame, item 0 "
                             f"{buf.shape[1]}; pass frames of one width")
        if not np.isfinite(f).all():
            raise LeverError(f"item {i} holds NaN or inf; drop it or fix the features")
        start = 0
        while start < len(f):
            take = min(len(f) - start, len(buf) - held)
            buf[held:held + take] = f[start:start + take]
            lab[held:held + take] = codes[i]
            held, start = held + take, start + take
            if held == len(buf):
                yield buf, lab
                held = 0
        n += 1
    if n != len(codes):
        raise LeverError(f"{n} items for {len(codes)} sensitive_features; pass one gender per "
                         "item")
    if held:
        yield buf[:held], lab[:held]


@register
class GenderEraser:
    """LEACE eraser of a categorical attribute (gender) from features or embeddings.

    Parameters
    ----------
    strength : float, default 1.0
        Fraction of the LEACE edit applied (0: identity, 1: full erasure).
    method : {"leace", "orth"}, default "leace"
        ``concept-erasure``'s projection: LEACE (whitened, minimal change) or the plain
        orthogonal projection out of the class-mean directions.
    shrinkage : bool, default True
        Ledoit-Wolf-style shrinkage of the covariance (``concept-erasure``'s default),
        useful when rows are few against the width.
    """

    kind: ClassVar[str] = "gender-eraser"

    def __init__(self, *, strength: float = 1.0, method: Literal["leace", "orth"] = "leace",
                 shrinkage: bool = True) -> None:
        if method not in ("leace", "orth"):
            raise LeverError(f"method={method!r}; use 'leace' or 'orth'")
        self.strength = check_strength(strength)
        self.method = method
        self.shrinkage = bool(shrinkage)
        self.classes: list[str] = []
        self._left: np.ndarray | None = None
        self._right: np.ndarray | None = None
        self._bias: np.ndarray | None = None

    # -- fitting ---------------------------------------------------------------------------
    def _codes(self, values: Sequence[Any], n: int) -> np.ndarray:
        labels = np.asarray([str(v) for v in values], dtype=object)
        if len(labels) != n:
            raise LeverError(f"sensitive_features has {len(labels)} values for {n} rows; pass "
                             "one per row (missing genders: drop the rows)")
        bad = [v for v in ("<NA>", "nan", "None", "") if v in set(labels.tolist())]
        if bad:
            raise LeverError(f"sensitive_features holds missing value {bad[0]!r}; drop rows "
                             "without a gender before fitting the eraser")
        self.classes = sorted(set(labels.tolist()))
        if len(self.classes) < 2:
            raise LeverError(f"sensitive_features holds only {self.classes}; erasure needs "
                             "two or more groups")
        return np.searchsorted(np.asarray(self.classes, dtype=object), labels)

    def _fitter(self, width: int) -> Any:
        with warnings.catch_warnings():  # the package's other modules use torch.jit.script
            warnings.simplefilter("ignore", DeprecationWarning)
            from concept_erasure import LeaceFitter

        return LeaceFitter(width, len(self.classes), method=self.method,
                           shrinkage=self.shrinkage, dtype=torch.float64)

    def _finish(self, fitter: Any) -> GenderEraser:
        eraser = fitter.eraser
        self._left = eraser.proj_left.numpy().astype(np.float64)
        self._right = eraser.proj_right.numpy().astype(np.float64)
        self._bias = eraser.bias.numpy().astype(np.float64)
        return self

    def fit(self, x: Any, *, sensitive_features: Sequence[Any]) -> GenderEraser:
        """Fit on pooled rows.

        Parameters
        ----------
        x : array-like of shape (n, E)
            Embeddings or pooled features (e.g. source and target together).
        sensitive_features : sequence of shape (n,)
            Gender of each row.

        Returns
        -------
        GenderEraser
            ``self``.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise LeverError(f"x has shape {x.shape}; expected (n, E) with n >= 2")
        if not np.isfinite(x).all():
            raise LeverError("x holds NaN or inf; drop those rows or fix the features")
        codes = self._codes(sensitive_features, len(x))
        z = np.eye(len(self.classes))[codes]
        fitter = self._fitter(x.shape[1])
        fitter.update(torch.from_numpy(x), torch.from_numpy(z))
        return self._finish(fitter)

    def fit_frames(self, items: Iterable[Any], *, sensitive_features: Sequence[Any]
                   ) -> GenderEraser:
        """Fit on frames: each frame vector is a sample with its utterance's gender.

        The items are streamed (a generator is read one item at a time): the statistics
        are updated in chunks of a bounded number of frames (:func:`frame_chunks`), so
        memory does not grow with the number of items.

        Parameters
        ----------
        items : iterable of ndarray
            ``(L, T, D)`` or ``(T, D)`` frames per utterance (the eraser works on ``L * D``).
        sensitive_features : sequence
            Gender of each utterance (as many as ``items``).
        """
        labels = list(sensitive_features)
        codes = self._codes(labels, len(labels))
        fitter = None
        eye = np.eye(len(self.classes))
        for x, c in frame_chunks(items, codes):
            fitter = fitter or self._fitter(x.shape[1])
            fitter.update(torch.from_numpy(x), torch.from_numpy(eye[c]))
        if fitter is None:
            raise LeverError("no frames to fit on; pass items with at least one frame")
        return self._finish(fitter)

    # -- applying --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self._left is None:
            raise LeverError("GenderEraser is not fitted; call fit() first (or load a fitted "
                             "one)")

    def transform(self, x: Any) -> np.ndarray:
        """Erase from pooled rows ``(n, E)`` (float32 out)."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._bias.size:
            raise LeverError(f"x has shape {x.shape}; the eraser was fitted on width "
                             f"{self._bias.size}")
        edit = ((x - self._bias) @ self._right.T) @ self._left.T
        return (x - self.strength * edit).astype(np.float32)

    def transform_frames(self, items: Iterable[Any]) -> list[np.ndarray]:
        """Erase from every frame of each item; same shapes, float32."""
        out = []
        for i, item in enumerate(items):
            arr = np.asarray(item)
            flat = self.transform(_frames_2d(arr, i))
            if arr.ndim == 3:
                flat = np.moveaxis(flat.reshape(arr.shape[1], arr.shape[0], arr.shape[2]), 0, 1)
            out.append(np.ascontiguousarray(flat))
        return out

    @property
    def rank(self) -> int:
        """Rank of the edit (at most the number of groups minus one).

        Computed on the ``k x k`` core of the ``(D, k) @ (k, D)`` factors (QR of each), never
        on the ``D x D`` product: cheap for wide inputs (``L * D`` frames).
        """
        self._check_fitted()
        _, r_left = np.linalg.qr(self._left)
        _, r_right = np.linalg.qr(self._right.T)
        return int(np.linalg.matrix_rank(r_left @ r_right.T))

    # -- serialised form -------------------------------------------------------------------
    def to_dict(self, *, lists: bool = False) -> dict[str, Any]:
        """Serialised form (:mod:`fairser.levers._base`)."""
        self._check_fitted()
        return pack(self.kind, options={"strength": self.strength, "method": self.method,
                                        "shrinkage": self.shrinkage},
                    state={"classes": self.classes},
                    arrays={"proj_left": self._left, "proj_right": self._right,
                            "bias": self._bias}, lists=lists)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenderEraser:
        """Inverse of :meth:`to_dict`."""
        options, state, a = unpack(d, cls.kind, ("proj_left", "proj_right", "bias"))
        lever = cls(**options)
        lever.classes = [str(c) for c in state.get("classes", [])]
        lever._left = a["proj_left"].astype(np.float64)
        lever._right = a["proj_right"].astype(np.float64)
        lever._bias = a["bias"].astype(np.float64).reshape(-1)
        width = lever._bias.size
        if lever._left.shape[0] != width or lever._right.shape[-1] != width:
            raise LeverError("serialised gender-eraser: projection and bias widths disagree; "
                             "refit the lever")
        return lever
