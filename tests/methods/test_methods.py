"""Methods: registry, reweighing formula, FairW update direction, stage-2 terms."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fairser.errors import ConfigError
from fairser.methods import (
    METHODS,
    StepContext,
    fairw_update,
    get_method,
    group_error_rates,
    group_table_weights,
    reweighing_table,
)
from fairser.models import NetOutput

OPTS = SimpleNamespace(
    alignment="coral",
    align_weight=1.0,
    n_anchors=4,
    alpha=0.5,
    gsim_margin=1.0,
    gsim_normalize=True,
    gsim_on="shared",
    fairw_rate=0.5,
    fairw_eps=0.02,
)


def test_registry_names_and_flags() -> None:
    assert list(METHODS) == ["source-only", "pa", "pa-rew", "pa-fairw", "pa-adv", "pa-cfa"]
    assert not get_method("source-only").uses_target
    assert all(get_method(n).uses_target for n in list(METHODS)[1:])
    assert [n for n in METHODS if METHODS[n].adversarial] == ["pa-adv", "pa-cfa"]
    with pytest.raises(ConfigError, match="unknown method 'pa-xyz'; use one of: source-only"):
        get_method("pa-xyz")
    with pytest.raises(TypeError):
        METHODS["new"] = object  # read-only registry


def test_reweighing_matches_formula() -> None:
    # groups 0/1, classes 0/1: counts [[30, 10], [20, 40]] -> n = 100
    g = np.repeat([0, 0, 1, 1], [30, 10, 20, 40])
    y = np.repeat([0, 1, 0, 1], [30, 10, 20, 40])
    table = reweighing_table(y, g, 2, 2)
    pg, py = np.array([0.4, 0.6]), np.array([0.5, 0.5])
    joint = np.array([[0.3, 0.1], [0.2, 0.4]])
    assert np.allclose(table, pg[:, None] * py[None, :] / joint)
    w = group_table_weights(table, y, g)
    # after reweighing, group and class are independent: weighted joint = product of marginals
    wj = np.array([[w[(g == a) & (y == b)].sum() for b in (0, 1)] for a in (0, 1)]) / w.sum()
    assert np.allclose(wj, np.outer(wj.sum(1), wj.sum(0)))
    # balanced cells: all ones (RAVDESS); unknown groups weigh 1
    gb = np.array([0, 1, 0, 1, -1])
    yb = np.array([0, 0, 1, 1, 1])
    assert np.allclose(reweighing_table(yb, gb, 2, 2), 1.0)
    assert group_table_weights(table, yb, gb)[-1] == 1.0
    rew = get_method("pa-rew")(OPTS)
    assert np.allclose(rew.initial_table(y, g, 2, 2), table)
    assert np.allclose(get_method("pa")(OPTS).initial_table(y, g, 2, 2), 1.0)


def test_fairw_moves_weight_toward_worse_group() -> None:
    table = np.ones((2, 2))
    errors = np.array([[0.10, 0.40], [0.10, 0.10]])  # group 0 misses positives more often
    new = fairw_update(table, errors, rate=0.5, eps=0.0)
    assert new[0, 1] > 1.0 > new[1, 1]
    assert np.allclose(new[:, 0], 1.0)  # equal errors: unchanged
    assert np.allclose(new[:, 1].mean(), 1.0)  # the class keeps its total weight
    # exact: target = err / mean(err) = [1.6, 0.4]; half-way from 1
    assert np.allclose(new[:, 1], [1.3, 0.7])
    # repeated updates keep moving toward the worse group while it stays worse
    newer = fairw_update(new, errors, rate=0.5, eps=0.0)
    assert newer[0, 1] > new[0, 1]
    # empty cells are left alone
    e = errors.copy()
    e[1, 1] = np.nan
    assert np.allclose(fairw_update(table, e)[:, 1], 1.0)


def test_fairw_method_uses_epoch_predictions() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    g = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1, 0, 0, 0, 0])  # group 0's positives all missed
    err, cnt = group_error_rates(y, g, pred, 2, 2)
    assert err[0, 1] == 1.0 and err[1, 1] == 0.0 and cnt.sum() == 8
    new = get_method("pa-fairw")(OPTS).update_table(np.ones((2, 2)), y=y, g=g, pred=pred)
    assert new[0, 1] > 1.0 > new[1, 1]
    assert np.allclose(get_method("pa")(OPTS).update_table(np.ones((2, 2)), y=y, g=g, pred=pred), 1)


def _out(emb: torch.Tensor, n_groups: int = 2) -> NetOutput:
    b = emb.shape[0]
    return NetOutput(
        torch.zeros(b), emb, emb.unsqueeze(1).repeat(1, 3, 1), torch.zeros(b, n_groups), emb[:, :2]
    )


def test_stage2_terms_compose() -> None:
    torch.manual_seed(0)
    ctx = StepContext(
        source=_out(torch.randn(6, 4)),
        target=_out(torch.randn(5, 4) + 1.0),
        source_groups=torch.tensor([0, 1, 0, 1, 0, 1]),
        target_groups=torch.tensor([0, 1, -1, 1, 0]),
        source_anchors=torch.zeros(6, 3, dtype=torch.long),
        target_anchors=torch.zeros(5, 3, dtype=torch.long),
    )
    assert get_method("source-only")(OPTS).stage2_terms(ctx) == {}
    assert set(get_method("pa")(OPTS).stage2_terms(ctx)) == {"align"}
    assert set(get_method("pa-adv")(OPTS).stage2_terms(ctx)) == {"align", "gc"}
    cfa = get_method("pa-cfa")(OPTS).stage2_terms(ctx)
    assert set(cfa) == {"align", "gc", "gsim"}
    assert float(cfa["gc"]) == pytest.approx(np.log(2.0), abs=1e-6)  # zero logits, 2 groups
    branch = get_method("pa-cfa")(SimpleNamespace(**{**vars(OPTS), "gsim_on": "gender_branch"}))
    assert float(branch.stage2_terms(ctx)["gsim"]) != pytest.approx(float(cfa["gsim"]))
    anchors = get_method("pa")(SimpleNamespace(**{**vars(OPTS), "alignment": "anchors"}))
    assert float(anchors.stage2_terms(ctx)["align"]) > 0
    none = get_method("pa")(SimpleNamespace(**{**vars(OPTS), "alignment": "none"}))
    assert none.stage2_terms(ctx) == {}
