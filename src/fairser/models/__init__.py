"""Torch modules only: encoder, pooling, heads, gradient reversal and losses."""

from __future__ import annotations

from fairser.models.blocks import (
    InputProjection,
    LayerWeighting,
    SinusoidalPositions,
    TransformerFrameEncoder,
)
from fairser.models.heads import AttributeHead, MLPHead
from fairser.models.losses import (
    anchor_alignment_loss,
    coral_loss,
    gender_similarity_loss,
    weighted_bce,
    weighted_ce,
)
from fairser.models.network import FairSERNet, NetOutput, NetSpec
from fairser.models.pooling import AttentiveStatsPooling, MeanPooling, make_pooling
from fairser.models.reversal import GradientReversal, beta_at, grad_reverse
from fairser.models.spec_checks import PositionalLeakWarning, positional_leak

__all__ = [
    "AttentiveStatsPooling",
    "AttributeHead",
    "FairSERNet",
    "GradientReversal",
    "InputProjection",
    "LayerWeighting",
    "MLPHead",
    "MeanPooling",
    "NetOutput",
    "NetSpec",
    "PositionalLeakWarning",
    "SinusoidalPositions",
    "TransformerFrameEncoder",
    "anchor_alignment_loss",
    "beta_at",
    "coral_loss",
    "gender_similarity_loss",
    "grad_reverse",
    "make_pooling",
    "positional_leak",
    "weighted_bce",
    "weighted_ce",
]
