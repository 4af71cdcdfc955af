"""Gradient reversal: identity forward, gradient times -beta backward; the beta schedule."""

from __future__ import annotations

import math

import pytest
import torch

from fairser.models import GradientReversal, beta_at, grad_reverse


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.5])
def test_reversal_multiplies_gradient_by_minus_beta(beta: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64)
    y = grad_reverse(x, beta)
    assert torch.equal(y, x)
    (y.pow(2) @ w).sum().backward()
    expected = -beta * 2 * x.detach() * w  # d/dx of sum(x^2 w), reversed and scaled
    assert torch.allclose(x.grad, expected)


def test_reversal_module_matches_finite_difference_sign() -> None:
    torch.manual_seed(1)
    lin = torch.nn.Linear(4, 1).double()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    rev = GradientReversal(beta=0.7)
    lin(rev(x)).sum().backward()
    grad_rev = x.grad.clone()
    x.grad = None
    lin(x).sum().backward()
    assert torch.allclose(grad_rev, -0.7 * x.grad)
    # numerical check of the plain gradient the reversal scales
    eps = 1e-6
    x0 = x.detach().clone()
    num = torch.zeros_like(x0)
    for i in range(x0.numel()):
        d = torch.zeros_like(x0).view(-1)
        d[i] = eps
        d = d.view_as(x0)
        num.view(-1)[i] = (lin(x0 + d).sum() - lin(x0 - d).sum()) / (2 * eps)
    assert torch.allclose(grad_rev, -0.7 * num, atol=1e-6)


def test_beta_schedules() -> None:
    assert beta_at(0.3, beta=0.5) == 0.5
    assert beta_at(0.0, beta=0.5, schedule="dann") == 0.0
    mid = beta_at(0.5, beta=1.0, schedule="dann", gamma=10.0)
    assert mid == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert beta_at(1.0, beta=0.8, schedule="dann") == pytest.approx(0.8, abs=1e-3)
    assert beta_at(0.2, beta=1.0, schedule="dann") < beta_at(0.6, beta=1.0, schedule="dann")
    with pytest.raises(ValueError, match="unknown beta schedule"):
        beta_at(0.5, beta=1.0, schedule="linear")
