"""Gradient reversal layer (Ganin and Lempitsky, 2015) and its coefficient schedule.

The forward pass is the identity; the backward pass multiplies the incoming gradient by
``-beta``. Placed between the shared embedding and the gender classifier it lets the classifier
minimise its loss while the encoder receives ``-beta`` times that loss's gradient, i.e. the
encoder *maximises* the gender loss: the ``- beta L_GC`` term of the paper.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GradientReversal", "beta_at", "grad_reverse"]


class _GradReverse(torch.autograd.Function):
    """Identity forward, ``-beta * grad`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, beta: float) -> torch.Tensor:  # noqa: D401
        ctx.beta = float(beta)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.beta * grad_output, None


def grad_reverse(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Return ``x`` unchanged; gradients flowing back through it are multiplied by ``-beta``.

    Parameters
    ----------
    x : torch.Tensor
        Any tensor.
    beta : float
        Reversal coefficient (0 blocks the gradient, 1 reverses it unscaled).

    Returns
    -------
    torch.Tensor
        A view of ``x`` attached to the reversal node.
    """
    return _GradReverse.apply(x, beta)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse` whose coefficient the training loop sets per step.

    Parameters
    ----------
    beta : float
        Initial coefficient; change it with :attr:`beta` (e.g. following :func:`beta_at`).
    """

    def __init__(self, *, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity forward; reversed, ``beta``-scaled gradient backward."""
        return grad_reverse(x, self.beta)

    def extra_repr(self) -> str:
        """Shown by ``repr``: the current coefficient."""
        return f"beta={self.beta:g}"


def beta_at(
    progress: float, *, beta: float, schedule: str = "constant", gamma: float = 10.0
) -> float:
    """Reversal coefficient at a point of training.

    Parameters
    ----------
    progress : float
        Fraction of the adversarial stage done, clipped to [0, 1].
    beta : float
        Final (or constant) coefficient.
    schedule : {"constant", "dann"}
        ``constant`` returns ``beta``; ``dann`` ramps it up as in Ganin et al. (2016):
        ``beta * (2 / (1 + exp(-gamma * progress)) - 1)``, 0 at the start, ~``beta`` at the end.
    gamma : float
        Steepness of the ``dann`` ramp.

    Returns
    -------
    float
        The coefficient to use.

    Raises
    ------
    ValueError
        For an unknown schedule (configs are validated before this is reached).
    """
    p = min(max(float(progress), 0.0), 1.0)
    if schedule == "constant":
        return float(beta)
    if schedule == "dann":
        return float(beta) * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)
    raise ValueError(f"unknown beta schedule {schedule!r}; use 'constant' or 'dann'")
