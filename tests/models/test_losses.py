"""Losses: L_GSim against hand-computed values, CORAL, anchor alignment, weighted losses."""

from __future__ import annotations

import pytest
import torch

from fairser.models import (
    anchor_alignment_loss,
    coral_loss,
    gender_similarity_loss,
    weighted_bce,
    weighted_ce,
)


def test_gsim_raw_vectors_hand_computed() -> None:
    s = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    t = torch.tensor([[0.0, 4.0]])
    # pair (s0, t0): same group, d = 4 -> 16; pair (s1, t0): different, d = 5 -> (6 - 5)^2 = 1
    loss = gender_similarity_loss(
        s, t, torch.tensor([0, 1]), torch.tensor([0]), margin=6.0, normalize=False
    )
    assert float(loss) == pytest.approx((16.0 + 1.0) / 2)
    # with the default margin 1 the different pair is beyond the margin: loss 0 for it
    loss1 = gender_similarity_loss(s, t, torch.tensor([0, 1]), torch.tensor([0]), normalize=False)
    assert float(loss1) == pytest.approx(16.0 / 2)


def test_gsim_normalised_and_unknown_groups_ignored() -> None:
    s = torch.tensor([[2.0, 0.0], [0.0, 3.0], [7.0, 7.0]])
    t = torch.tensor([[5.0, 0.0], [1.0, 1.0]])
    sg = torch.tensor([0, 1, -1])  # third source row: unknown group, ignored
    tg = torch.tensor([1, -1])  # second target row: unknown, ignored
    # unit vectors: s0=(1,0), s1=(0,1), t0=(1,0)
    # (s0,t0) different groups, d=0 -> (1-0)^2 = 1 ; (s1,t0) same group, d^2 = 2
    loss = gender_similarity_loss(s, t, sg, tg)
    assert float(loss) == pytest.approx(1.5, abs=1e-5)


def test_gsim_gradient_pulls_same_pushes_different() -> None:
    s = torch.tensor([[1.0, 0.2]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0]])
    gender_similarity_loss(s, t, torch.tensor([0]), torch.tensor([0]), normalize=False).backward()
    assert s.grad[0, 1] > 0  # descending moves s toward t
    s.grad = None
    gender_similarity_loss(s, t, torch.tensor([0]), torch.tensor([1]), normalize=False).backward()
    assert s.grad[0, 1] < 0  # different groups within the margin: pushed apart


def test_gsim_without_known_pairs_is_zero_and_differentiable() -> None:
    s = torch.randn(3, 4, requires_grad=True)
    loss = gender_similarity_loss(
        s, torch.randn(2, 4), torch.tensor([-1, -1, -1]), torch.tensor([0, 1])
    )
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_coral_zero_for_same_batch_positive_for_shift() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 8, generator=g)
    assert float(coral_loss(a, a.clone())) == pytest.approx(0.0, abs=1e-10)
    scaled = coral_loss(a, 3.0 * a)
    shifted = coral_loss(a, a + 2.0)
    assert float(scaled) > 0.01
    assert float(shifted) == pytest.approx(4.0, rel=1e-5)  # mean term: 8 * 2^2 / 8
    assert float(coral_loss(a[:1], a)) == 0.0


def test_anchor_alignment_hand_computed() -> None:
    sf = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    tf = torch.tensor([[[2.0, 0.0], [1.0, 0.0]]])
    sa = torch.tensor([[0, 1, -1]])
    ta = torch.tensor([[0, 1]])
    # anchor 0: (1,0) vs (1,0) after normalising -> 0; anchor 1: (0,1) vs (1,0) -> 2
    loss = anchor_alignment_loss(sf, tf, sa, ta, 3)
    assert float(loss) == pytest.approx(1.0)
    none = anchor_alignment_loss(sf, tf, torch.tensor([[2, 2, 2]]), ta, 3)
    assert float(none) == 0.0


def test_weighted_losses() -> None:
    logits = torch.tensor([0.0, 0.0])
    y = torch.tensor([1, 0])
    base = float(weighted_bce(logits, y))
    assert base == pytest.approx(0.693147, abs=1e-5)
    assert float(weighted_bce(logits, y, torch.tensor([2.0, 0.0]))) == pytest.approx(base)
    ce = weighted_ce(torch.zeros(3, 4), torch.tensor([0, -1, 3]))
    assert float(ce) == pytest.approx(torch.log(torch.tensor(4.0)).item(), abs=1e-6)
    assert float(weighted_ce(torch.zeros(2, 4), torch.tensor([-1, -1]))) == 0.0
