"""Classifier heads: the emotion classifier EC and the gender classifier GC."""

from __future__ import annotations

import torch
from torch import nn

from fairser.models.reversal import GradientReversal

__all__ = ["AttributeHead", "MLPHead"]


class MLPHead(nn.Module):
    """One hidden layer MLP (or a linear map when ``hidden`` is 0).

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths.
    hidden : int
        Hidden width; 0 for a linear head.
    dropout : float
        Dropout before the output layer.
    """

    def __init__(self, in_dim: int, out_dim: int, *, hidden: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        if hidden > 0:
            self.body: nn.Module = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout)
            )
            self.out = nn.Linear(hidden, out_dim)
        else:
            self.body = nn.Dropout(dropout)
            self.out = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits, hidden representation)."""
        h = self.body(x)
        return self.out(h), h


class AttributeHead(nn.Module):
    """Gender (protected attribute) classifier behind a gradient reversal layer.

    Parameters
    ----------
    in_dim : int
        Width of the shared embedding.
    n_groups : int
        Number of attribute values.
    hidden : int
        Hidden width of the MLP.
    dropout : float
        Dropout inside the MLP.
    beta : float
        Initial reversal coefficient (the loop updates :attr:`reversal.beta`).
    """

    def __init__(
        self,
        in_dim: int,
        n_groups: int,
        *,
        hidden: int = 64,
        dropout: float = 0.1,
        beta: float = 0.5,
    ) -> None:
        super().__init__()
        self.reversal = GradientReversal(beta=beta)
        self.mlp = MLPHead(in_dim, n_groups, hidden=hidden, dropout=dropout)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits, hidden) for the embedding, gradients reversed into it."""
        return self.mlp(self.reversal(embedding))
