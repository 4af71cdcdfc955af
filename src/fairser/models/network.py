"""The full SER network: features -> projection -> transformer -> pooling -> EC (+ GC)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from fairser.models.blocks import InputProjection, TransformerFrameEncoder
from fairser.models.heads import AttributeHead, MLPHead
from fairser.models.pooling import make_pooling

__all__ = ["FairSERNet", "NetOutput", "NetSpec"]


@dataclass(frozen=True, kw_only=True)
class NetSpec:
    """Everything needed to rebuild a :class:`FairSERNet` (saved next to its weights).

    Attributes
    ----------
    n_layers_in : int
        Number of feature layers L.
    in_dim : int
        Feature width D.
    n_outputs : int
        1 for a binary task, C for C-class.
    n_groups : int
        Attribute values the gender head predicts (0: no head).
    d_model, n_layers, n_heads, ff_dim : int
        Transformer width, depth, heads and feed-forward width.
    dropout, input_dropout : float
        Dropout in the encoder/heads and on the standardised input.
    pooling : str
        ``mean`` or ``attentive_stats``.
    embed_dim : int
        Width of the shared embedding layer (linear + GELU after pooling); 0: no such layer,
        the pooled encoder output is the shared embedding (:attr:`FairSERNet.embedding_dim`).
    positional : bool
        Sinusoidal positions on the frames.
    gc_hidden : int
        Hidden width of the gender classifier.
    ec_hidden : int
        Hidden width of the emotion classifier (0: linear).
    beta : float
        Initial gradient reversal coefficient.
    """

    n_layers_in: int
    in_dim: int
    n_outputs: int
    n_groups: int = 0
    d_model: int = 128
    n_layers: int = 1
    n_heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    input_dropout: float = 0.1
    pooling: str = "mean"
    embed_dim: int = 128
    positional: bool = True
    gc_hidden: int = 64
    ec_hidden: int = 0
    beta: float = 0.5

    def to_dict(self) -> dict:
        """Plain-dict form for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class NetOutput:
    """What one forward pass returns.

    Attributes
    ----------
    logits : torch.Tensor
        (B,) for binary, (B, C) for multiclass.
    embedding : torch.Tensor
        (B, E) shared embedding.
    frames : torch.Tensor
        (B, T, d_model) encoder outputs (for anchor alignment).
    gender_logits, gender_hidden : torch.Tensor or None
        (B, G) and (B, gc_hidden) from the gender branch, ``None`` without a gender head.
    """

    logits: torch.Tensor
    embedding: torch.Tensor
    frames: torch.Tensor
    gender_logits: torch.Tensor | None
    gender_hidden: torch.Tensor | None


class FairSERNet(nn.Module):
    """Speech emotion classifier with an optional adversarial gender branch.

    Parameters
    ----------
    spec : NetSpec
        Architecture.
    """

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.project = InputProjection(
            spec.n_layers_in, spec.in_dim, spec.d_model, dropout=spec.input_dropout
        )
        self.encoder = TransformerFrameEncoder(
            spec.d_model,
            n_layers=spec.n_layers,
            n_heads=spec.n_heads,
            ff_dim=spec.ff_dim,
            dropout=spec.dropout,
            positional=spec.positional,
        )
        self.pool = make_pooling(spec.pooling, spec.d_model)
        self.embedding_dim = spec.embed_dim or self.pool.out_dim
        self.embed = (
            nn.Sequential(
                nn.Linear(self.pool.out_dim, spec.embed_dim), nn.GELU(), nn.Dropout(spec.dropout)
            )
            if spec.embed_dim
            else nn.Identity()
        )
        self.emotion = MLPHead(
            self.embedding_dim, spec.n_outputs, hidden=spec.ec_hidden, dropout=0.0
        )
        self.gender = (
            AttributeHead(
                self.embedding_dim,
                spec.n_groups,
                hidden=spec.gc_hidden,
                dropout=spec.dropout,
                beta=spec.beta,
            )
            if spec.n_groups > 0
            else None
        )

    def set_beta(self, beta: float) -> None:
        """Set the gradient reversal coefficient of the gender branch (no-op without one)."""
        if self.gender is not None:
            self.gender.reversal.beta = float(beta)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, *, gender: bool = True) -> NetOutput:
        """Run the network.

        Parameters
        ----------
        x : torch.Tensor
            (B, L, T, D) features, any float dtype.
        mask : torch.Tensor
            (B, T) bool, True on real frames; every row needs at least one.
        gender : bool
            Run the gender branch (when there is one). Stage 1 skips it, so that stage 1 is
            identical, random draws included, with and without a gender head.

        Returns
        -------
        NetOutput
        """
        frames = self.encoder(self.project(x), mask)
        emb = self.embed(self.pool(frames, mask))
        logits, _ = self.emotion(emb)
        if self.spec.n_outputs == 1:
            logits = logits.squeeze(-1)
        g_logits = g_hidden = None
        if self.gender is not None and gender:
            g_logits, g_hidden = self.gender(emb)
        return NetOutput(logits, emb, frames, g_logits, g_hidden)
