"""Evaluation batches: the dev split's padded batches are built once when its rows are kept
in memory, and give the same scores as batches collated every epoch."""

from __future__ import annotations

import pytest

from fairser.training.prepare import prepare_fit
from fairser.training.steps import Feeds, Runtime, evaluate


@pytest.mark.parametrize("cache_mb", [256.0, 0.0])
def test_dev_batches_are_kept_only_when_rows_are_cached(
    small_pair, fast_config, cache_mb, monkeypatch
) -> None:
    src, tgt, feats = small_pair
    cfg = {**fast_config, "eval_batch_size": 16}
    prep = prepare_fit(
        source=src, target=tgt, features=feats, method="pa", emotion="angry", config=cfg, seed=0
    )
    data, rt = prep.data, Runtime()
    feeds = data.feeds(rt, cache_mb=cache_mb)
    net = prep.build_net()
    built: list[int] = []
    batches = Feeds.batches

    def spy(self, which, plan):
        built.append(len(plan))
        return batches(self, which, plan)

    monkeypatch.setattr(Feeds, "batches", spy)
    scores = [
        evaluate(net, feeds, y=data.dev.y, binary=True, cfg=prep.config, rt=rt) for _ in range(3)
    ]
    n_batches = -(-len(data.dev) // 16)
    assert n_batches > 1
    assert built == ([n_batches] if cache_mb else [n_batches] * 3)
    assert scores[0] == scores[1] == scores[2]
    # the same numbers as batches collated afresh
    monkeypatch.setattr(Feeds, "fixed_batches", lambda self, w, plan: batches(self, w, plan))
    assert evaluate(net, feeds, y=data.dev.y, binary=True, cfg=prep.config, rt=rt) == scores[0]
