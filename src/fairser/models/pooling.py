"""Masked pooling of frame sequences into one vector per utterance."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AttentiveStatsPooling", "MeanPooling", "make_pooling"]


class MeanPooling(nn.Module):
    """Average of the real (unmasked) frames; output width equals input width."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = int(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool (B, T, d) with ``mask`` (B, T) True on real frames into (B, d)."""
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018): attention-weighted mean and std.

    Parameters
    ----------
    dim : int
        Frame width d; the output has width 2 d (mean, standard deviation).
    hidden : int
        Width of the attention scorer.
    """

    def __init__(self, dim: int, *, hidden: int = 64) -> None:
        super().__init__()
        self.out_dim = 2 * int(dim)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool (B, T, d) with ``mask`` (B, T) True on real frames into (B, 2 d)."""
        e = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, dim=1).unsqueeze(-1)
        a = torch.nan_to_num(a, nan=0.0)  # an all-masked row (never produced by our data)
        mean = (a * x).sum(1)
        var = (a * x.pow(2)).sum(1) - mean.pow(2)
        return torch.cat([mean, torch.sqrt(var.clamp_min(1e-6))], dim=-1)


def make_pooling(kind: str, dim: int) -> MeanPooling | AttentiveStatsPooling:
    """Build a pooling module by name: ``mean`` or ``attentive_stats``."""
    if kind == "mean":
        return MeanPooling(dim)
    if kind == "attentive_stats":
        return AttentiveStatsPooling(dim)
    raise ValueError(f"unknown pooling {kind!r}; use 'mean' or 'attentive_stats'")
