"""The network: shapes, padding invariance, layer weighting, pooling."""

from __future__ import annotations

import pytest
import torch

from fairser.models import (
    AttentiveStatsPooling,
    FairSERNet,
    LayerWeighting,
    MeanPooling,
    NetSpec,
)


def _spec(**kw) -> NetSpec:
    base = dict(
        n_layers_in=3,
        in_dim=10,
        n_outputs=1,
        n_groups=2,
        d_model=16,
        n_heads=2,
        ff_dim=32,
        embed_dim=8,
        gc_hidden=4,
        dropout=0.0,
        input_dropout=0.0,
    )
    base.update(kw)
    return NetSpec(**base)


@pytest.mark.parametrize("pooling", ["mean", "attentive_stats"])
def test_padding_does_not_change_outputs(pooling: str) -> None:
    torch.manual_seed(0)
    net = FairSERNet(_spec(pooling=pooling)).eval()
    x = torch.randn(2, 3, 6, 10)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    out = net(x, mask)
    padded = torch.cat([x, torch.randn(2, 3, 5, 10) * 100], dim=2)
    pmask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    out2 = net(padded, pmask)
    assert torch.allclose(out.logits, out2.logits, atol=1e-5)
    assert torch.allclose(out.embedding, out2.embedding, atol=1e-5)
    # row 1 alone equals row 1 in the batch
    alone = net(x[1:, :, :4], mask[1:, :4])
    assert torch.allclose(alone.logits, out.logits[1:], atol=1e-5)


def test_shapes_binary_multiclass_and_no_gender_head() -> None:
    x, m = torch.randn(4, 3, 5, 10), torch.ones(4, 5, dtype=torch.bool)
    out = FairSERNet(_spec())(x, m)
    assert out.logits.shape == (4,) and out.embedding.shape == (4, 8)
    assert out.gender_logits.shape == (4, 2) and out.gender_hidden.shape == (4, 4)
    assert out.frames.shape == (4, 5, 16)
    out = FairSERNet(_spec(n_outputs=5, n_groups=0, n_layers=0))(x, m)
    assert out.logits.shape == (4, 5) and out.gender_logits is None


def test_layer_weighting_is_softmax_mix() -> None:
    lw = LayerWeighting(3)
    with torch.no_grad():
        lw.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    x = torch.randn(2, 3, 4, 5)
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    expected = sum(w[i] * x[:, i] for i in range(3))
    assert torch.allclose(lw(x), expected, atol=1e-6)
    assert float(lw.weights().sum()) == pytest.approx(1.0)


def test_pooling_values() -> None:
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    m = torch.tensor([[True, True, False]])
    assert float(MeanPooling(1)(x, m)) == pytest.approx(2.0)
    asp = AttentiveStatsPooling(1)
    with torch.no_grad():
        for p in asp.score.parameters():
            p.zero_()  # uniform attention: plain mean and std of the real frames
    with torch.no_grad():
        out = asp(x, m)
    assert out.shape == (1, 2)
    assert float(out[0, 0]) == pytest.approx(2.0) and float(out[0, 1]) == pytest.approx(1.0, 1e-3)


def test_gender_branch_gradient_is_reversed_into_embedding() -> None:
    torch.manual_seed(0)
    net = FairSERNet(_spec(beta=1.0))
    x, m = torch.randn(3, 3, 4, 10), torch.ones(3, 4, dtype=torch.bool)
    emb = net.embed(net.pool(net.encoder(net.project(x), m), m)).detach().requires_grad_(True)
    g_logits, _ = net.gender(emb)
    g_logits.sum().backward()
    rev = emb.grad.clone()
    emb.grad = None
    net.gender.mlp(emb)[0].sum().backward()
    assert torch.allclose(rev, -emb.grad)
    net.set_beta(0.25)
    assert net.gender.reversal.beta == 0.25


@pytest.mark.parametrize(("pooling", "width"), [("mean", 16), ("attentive_stats", 32)])
def test_embed_dim_zero_makes_the_pooled_vector_the_embedding(pooling: str, width: int) -> None:
    torch.manual_seed(0)
    net = FairSERNet(_spec(embed_dim=0, pooling=pooling, n_layers=0)).eval()
    assert isinstance(net.embed, torch.nn.Identity) and net.embedding_dim == width
    x, m = torch.randn(4, 3, 5, 10), torch.ones(4, 5, dtype=torch.bool)
    out = net(x, m)
    assert out.embedding.shape == (4, width) and out.gender_logits.shape == (4, 2)
    # the embedding is the pooled encoder output itself, and the head reads it directly
    assert torch.allclose(out.embedding, net.pool(out.frames, m))
    assert torch.allclose(out.logits, net.emotion(out.embedding)[0].squeeze(-1))
    # one linear layer fewer than with an embedding layer
    with_layer = FairSERNet(_spec(pooling=pooling, n_layers=0))
    n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n_params(with_layer) - n_params(net) == (
        width * 8 + 8 - (width - 8) * (1 + 4)  # embed layer; heads read `width`, not 8, inputs
    )
