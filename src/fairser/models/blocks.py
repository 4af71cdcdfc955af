"""Frame-level building blocks: layer weighting, input projection, transformer encoder."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["InputProjection", "LayerWeighting", "SinusoidalPositions", "TransformerFrameEncoder"]


class LayerWeighting(nn.Module):
    """Learnable softmax-weighted sum over the L encoder layers of a feature tensor.

    Parameters
    ----------
    n_layers : int
        Number of layers L in the input (1 makes this the identity on the layer axis).
    """

    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.n_layers = int(n_layers)
        self.logits = nn.Parameter(torch.zeros(self.n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Combine (B, L, T, D) into (B, T, D)."""
        if self.n_layers == 1:
            return x[:, 0]
        w = torch.softmax(self.logits, dim=0)
        return torch.einsum("bltd,l->btd", x, w)

    def weights(self) -> torch.Tensor:
        """The current layer weights, shape (L,), summing to 1."""
        return torch.softmax(self.logits.detach(), dim=0)


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal position encodings (Vaswani et al., 2017), added to the frames.

    Parameters
    ----------
    dim : int
        Model width.
    max_len : int
        Longest sequence supported; longer inputs are an error of the caller (frames are capped
        when the data are assembled).
    """

    def __init__(self, dim: int, *, max_len: int = 4096) -> None:
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add encodings to (B, T, dim)."""
        return x + self.pe[: x.shape[1]].unsqueeze(0)


class InputProjection(nn.Module):
    """Standardise features, then dropout and a linear map to the model width.

    The per-(layer, dim) mean and standard deviation are buffers, set once from the source
    training frames with :meth:`set_stats` and saved with the model.

    Parameters
    ----------
    n_layers, in_dim : int
        Shape (L, D) of the input features.
    out_dim : int
        Model width.
    dropout : float
        Dropout on the standardised features.
    """

    def __init__(self, n_layers: int, in_dim: int, out_dim: int, *, dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_layers, in_dim))
        self.register_buffer("std", torch.ones(n_layers, in_dim))
        self.layers = LayerWeighting(n_layers)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, out_dim)

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the standardisation statistics, shapes (L, D); tiny stds are floored."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, L, T, D) features to (B, T, out_dim)."""
        x = (x.float() - self.mean[None, :, None, :]) / self.std[None, :, None, :]
        return self.linear(self.dropout(self.layers(x)))


class TransformerFrameEncoder(nn.Module):
    """A stack of pre-norm transformer encoder layers over masked frame sequences.

    Parameters
    ----------
    dim : int
        Model width.
    n_layers : int
        Number of layers (0 gives the identity followed by a layer norm).
    n_heads : int
        Attention heads; must divide ``dim``.
    ff_dim : int
        Width of the feed-forward sublayer.
    dropout : float
        Dropout inside the layers.
    positional : bool
        Add sinusoidal position encodings before the first layer.
    """

    def __init__(
        self,
        dim: int,
        *,
        n_layers: int = 1,
        n_heads: int = 4,
        ff_dim: int = 256,
        dropout: float = 0.1,
        positional: bool = True,
    ) -> None:
        super().__init__()
        self.positions = SinusoidalPositions(dim) if positional else None
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                n_heads,
                dim_feedforward=ff_dim,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode (B, T, dim) frames; ``mask`` (B, T) is True on real frames."""
        if self.positions is not None:
            x = self.positions(x)
        pad = ~mask
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return self.norm(x)
