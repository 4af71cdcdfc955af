"""Per-group decision thresholds for demographic parity (``GroupThresholds``), label-free.

Demographic parity compares only positive rates, so thresholds that equalise it can be fitted
on UNLABELLED target scores: no emotion label is read.

Binary scores ``(n,)`` (P(positive)): the target rate ``r`` is ``target_rate`` if given, else
the positive rate of the plain rule (``score >= threshold`` over all rows, i.e. the rate the
model already predicts). Each group's threshold is then the cut that makes ``round(r * n_g)``
of its ``n_g`` scores positive (the midpoint between the last score in and the first score
out; tied scores at the cut all go the same way, so a group's rate can overshoot with ties).
``strength`` w moves each threshold part-way: ``t_g(w) = threshold + w (t_g - threshold)``.
The labels come from :func:`fairser.decision.decide` with ``group_thresholds``.

Multi-class scores ``(n, C)`` (class probabilities): there is no threshold, so each group gets
additive offsets on the log-probabilities, fitted by a damped iteration so that the group's
arg-max class distribution matches the distribution of arg-max classes over all rows
(the multi-class form of demographic parity); ``strength`` scales the offsets. The steps
are in units of the log-scores' spread (at most 1), so a model with nearly flat probabilities
(strong weight decay) is matched as closely as a confident one.
:meth:`GroupThresholds.adjust` returns the shifted log-scores, whose arg-max
(:func:`~fairser.decision.decide`) are the labels.

Rows whose group is missing or was not seen by ``fit`` keep the plain rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from fairser.decision import DEFAULT_THRESHOLD, decide
from fairser.levers._base import LeverError, check_strength, pack, register, unpack

__all__ = ["GroupThresholds"]

_MISSING = {"<NA>", "nan", "None", ""}
_LOG_FLOOR = 1e-12


def _groups(groups: Sequence[Any] | None, n: int) -> np.ndarray:
    if groups is None:
        raise LeverError("groups is required: pass one group (gender) per score")
    g = np.asarray([str(v) for v in groups], dtype=object)
    if len(g) != n:
        raise LeverError(f"groups has {len(g)} values for {n} scores; pass one per score")
    return g


def _scores(scores: Any) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim not in (1, 2) or len(s) == 0:
        raise LeverError(f"scores has shape {s.shape}; expected (n,) binary probabilities or "
                         "(n, C) class probabilities")
    if not np.isfinite(s).all():
        raise LeverError("scores hold NaN or inf; drop those rows before fitting thresholds")
    return s


def _cut(scores: np.ndarray, rate: float) -> float:
    """Threshold making ``round(rate * n)`` of ``scores`` positive (``score >= cut``)."""
    d = np.sort(scores)[::-1]
    k = int(round(rate * len(d)))
    if k <= 0:
        return float(np.nextafter(d[0], np.inf))
    if k >= len(d):
        return float(d[-1])
    return float((d[k - 1] + d[k]) / 2.0)


@register
class GroupThresholds:
    """Per-group thresholds (binary) or log-score offsets (multi-class) for parity.

    Parameters
    ----------
    threshold : float, default 0.5
        The plain binary threshold (rows of unknown groups keep it).
    strength : float, default 1.0
        0: the plain rule; 1: full parity; in between, part-way (module docstring).
    target_rate : float, optional
        Binary: positive rate every group is brought to; default the plain rule's overall rate.
    max_iter : int, default 500
        Multi-class: iterations of the offset fit.
    """

    kind: ClassVar[str] = "group-thresholds"

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, strength: float = 1.0,
                 target_rate: float | None = None, max_iter: int = 500) -> None:
        if target_rate is not None and not 0.0 <= float(target_rate) <= 1.0:
            raise LeverError(f"target_rate={target_rate} must be in [0, 1] or None")
        self.threshold = float(threshold)
        self.strength = check_strength(strength)
        self.target_rate = None if target_rate is None else float(target_rate)
        self.max_iter = int(max_iter)
        self.task: str | None = None
        self.groups: list[str] = []
        self.rate: float | list[float] | None = None
        self._full: np.ndarray | None = None  # binary: (G,) thresholds; multi: (G, C) offsets

    def fit(self, scores: Any, *, groups: Sequence[Any]) -> GroupThresholds:
        """Fit on unlabelled scores.

        Parameters
        ----------
        scores : array-like
            ``(n,)`` P(positive) or ``(n, C)`` class probabilities.
        groups : sequence of shape (n,)
            Group (gender) of each row.

        Returns
        -------
        GroupThresholds
            ``self``.
        """
        s = _scores(scores)
        g = _groups(groups, len(s))
        known = ~np.isin(g, list(_MISSING))
        self.groups = sorted(set(g[known].tolist()))
        if not self.groups:
            raise LeverError("groups holds no known group; pass genders such as 'M'/'F'")
        if s.ndim == 1:
            self.task = "binary"
            rate = self.target_rate
            if rate is None:
                rate = float(decide(s, threshold=self.threshold).mean())
            self.rate = rate
            self._full = np.asarray([_cut(s[g == name], rate) for name in self.groups])
        else:
            self.task = "multiclass"
            self._fit_offsets(np.log(np.clip(s, _LOG_FLOOR, None)), g)
        return self

    def _fit_offsets(self, logp: np.ndarray, g: np.ndarray) -> None:
        n_cls = logp.shape[1]
        target = np.bincount(logp.argmax(axis=1), minlength=n_cls) / len(logp)
        self.rate = target.tolist()
        offsets = np.zeros((len(self.groups), n_cls))
        for i, name in enumerate(self.groups):
            x = logp[g == name]
            best, best_gap = offsets[i].copy(), np.inf
            b = np.zeros(n_cls)
            # steps in units of the log-scores' own spread (at most 1): a strongly shrunk model
            # spreads its log-probabilities over ~0.01, where unit steps only oscillate
            centred = x - x.mean(axis=1, keepdims=True)
            scale = min(1.0, max(float(centred.std()), 1e-12))
            for it in range(self.max_iter):
                rate = np.bincount((x + b).argmax(axis=1), minlength=n_cls) / len(x)
                gap = float(np.abs(rate - target).max())
                if gap < best_gap:
                    best, best_gap = b.copy(), gap
                if gap <= 0.5 / len(x):
                    break
                step = scale / np.sqrt(it + 1.0)
                b += step * (np.log(target + 1e-3) - np.log(rate + 1e-3))
                b -= b.mean()
            offsets[i] = best
        self._full = offsets

    # -- applying --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self._full is None:
            raise LeverError("GroupThresholds is not fitted; call fit() first (or load one)")

    @property
    def thresholds(self) -> dict[str, float]:
        """Binary: group -> threshold at the current ``strength`` (for ``decide``)."""
        self._check_fitted()
        if self.task != "binary":
            raise LeverError("thresholds exist for binary scores only; multi-class uses "
                             "offsets (adjust())")
        t = self.threshold + self.strength * (self._full - self.threshold)
        return {name: float(v) for name, v in zip(self.groups, t, strict=True)}

    @property
    def offsets(self) -> dict[str, list[float]]:
        """Multi-class: group -> log-score offsets at the current ``strength``."""
        self._check_fitted()
        if self.task != "multiclass":
            raise LeverError("offsets exist for multi-class scores only; binary uses "
                             "thresholds")
        return {n: (self.strength * o).tolist() for n, o in zip(self.groups, self._full,
                                                                 strict=True)}

    def adjust(self, scores: Any, *, groups: Sequence[Any]) -> np.ndarray:
        """Multi-class: log-probabilities plus each row's group offsets, ``(n, C)``."""
        s = _scores(scores)
        if s.ndim != 2:
            raise LeverError("adjust() takes (n, C) class probabilities; binary scores go "
                             "through predict()")
        offsets = self.offsets
        if s.shape[1] != len(next(iter(offsets.values()))):
            raise LeverError(f"scores have {s.shape[1]} classes; the lever was fitted on "
                             f"{len(next(iter(offsets.values())))}")
        g = _groups(groups, len(s))
        out = np.log(np.clip(s, _LOG_FLOOR, None))
        for name, o in offsets.items():
            out[g == name] += np.asarray(o)
        return out

    def predict(self, scores: Any, *, groups: Sequence[Any]) -> np.ndarray:
        """Hard labels (int64) through :func:`fairser.decision.decide`."""
        self._check_fitted()
        s = _scores(scores)
        if (s.ndim == 1) != (self.task == "binary"):
            raise LeverError(f"scores of shape {s.shape} but the lever was fitted on "
                             f"{self.task} scores")
        if s.ndim == 2:
            return decide(self.adjust(s, groups=groups))
        g = _groups(groups, len(s))
        return decide(s, threshold=self.threshold, group_thresholds=self.thresholds, groups=g)

    # -- serialised form -------------------------------------------------------------------
    def to_dict(self, *, lists: bool = False) -> dict[str, Any]:
        """Serialised form (:mod:`fairser.levers._base`)."""
        self._check_fitted()
        return pack(self.kind, options={"threshold": self.threshold, "strength": self.strength,
                                        "target_rate": self.target_rate,
                                        "max_iter": self.max_iter},
                    state={"task": self.task, "groups": self.groups, "rate": self.rate},
                    arrays={"full": self._full}, lists=lists)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroupThresholds:
        """Inverse of :meth:`to_dict`."""
        options, state, a = unpack(d, cls.kind, ("full",))
        lever = cls(**options)
        lever.task = state.get("task")
        lever.groups = [str(x) for x in state.get("groups", [])]
        lever.rate = state.get("rate")
        lever._full = a["full"].astype(np.float64)
        if lever.task not in ("binary", "multiclass") or len(lever._full) != len(lever.groups):
            raise LeverError("serialised group-thresholds lever is inconsistent (task or group "
                             "count); refit the lever")
        return lever
