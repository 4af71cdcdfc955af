"""Fairness levers: fitted transforms that compose with any method (data, decision).

A lever is a small fit/transform object with a serialised form (``to_dict``/``from_dict``,
:func:`save_lever`/:func:`load_lever` as one safetensors file), so a lever fitted at training
time is applied unchanged at inference. None of them reads emotion labels; each has a
``strength`` in [0, 1] for trade-off sweeps (0: off, 1: full).

- :class:`SpeakerNorm`: per-speaker z-normalisation of frame features, with corpus/global
  fallback for speakers with too few utterances, and a report of what fell back.
- :class:`GenderEraser`: LEACE linear concept erasure of gender (``concept-erasure``), fitted
  on pooled rows or frames with gender labels (source and unlabelled target).
- :class:`QuadraticGenderEraser`: QLEACE, matching each gender's mean AND covariance (what
  a non-linear probe reads after LEACE); needs each row's gender when applied.
- :class:`PrincipalSubspace`: a label-free principal subspace to erase in (quadratic
  erasure is far more complete in 64-128 leading directions than in 512).
- :class:`GroupThresholds`: per-gender decision thresholds (binary) or log-score offsets
  (multi-class) fitted on unlabelled scores for demographic parity, applied through
  :func:`fairser.decision.decide`.

Layering: above :mod:`fairser.metrics`, below :mod:`fairser.models`.
"""

from __future__ import annotations

from fairser.levers._base import LEVERS, LeverError, load_lever, save_lever
from fairser.levers.erasure import GenderEraser
from fairser.levers.projection import PrincipalSubspace
from fairser.levers.quadratic import QuadraticGenderEraser
from fairser.levers.speaker_norm import NormReport, SpeakerNorm, frame_moments
from fairser.levers.thresholds import GroupThresholds

__all__ = [
    "LEVERS",
    "GenderEraser",
    "GroupThresholds",
    "LeverError",
    "NormReport",
    "PrincipalSubspace",
    "QuadraticGenderEraser",
    "SpeakerNorm",
    "frame_moments",
    "load_lever",
    "save_lever",
]
