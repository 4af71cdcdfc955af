"""Target self-training of the emotion head (``self_train``): pseudo labels chosen within each
gender from the model's own scores, never from target emotion labels."""

from __future__ import annotations

import numpy as np
import pytest
from pair_fakes import LEVER_TINY

from fairser.training import fit
from fairser.training.output_levers import pseudo_labels


def test_binary_pseudo_labels_take_the_extremes_of_each_gender() -> None:
    # men score high, women low: a global cut would pick only men as positives
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.5, 0.5])
    genders = np.array(["M"] * 5 + ["F"] * 5 + [None, None], dtype=object)
    idx, y = pseudo_labels(scores, genders, fraction=0.4)
    chosen = dict(zip(idx.tolist(), y.tolist(), strict=True))
    assert chosen == {0: 1, 4: 0, 5: 1, 9: 0}  # one positive and one negative per gender
    assert not set(chosen) & {10, 11}  # rows without a gender are never chosen
    assert pseudo_labels(scores, genders, fraction=0.1)[0].size == 0  # 0.05 x 5 rows < 1


def test_multiclass_pseudo_labels_take_each_class_within_each_gender() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=60)
    genders = np.array(["F", "M"] * 30, dtype=object)
    idx, y = pseudo_labels(p, genders, fraction=0.3)  # 30 rows a gender: 3 per class
    assert len(idx) == len(set(idx.tolist()))
    assert (p[idx].argmax(1) == y).all()  # each row labelled with its predicted class
    for g in ("F", "M"):
        mine = genders[idx] == g
        counts = np.bincount(y[mine], minlength=3)
        assert counts.max() <= 3 and counts.sum() >= 6
        for c in range(3):  # the most confident rows of the class
            pool = np.flatnonzero((genders == g) & (p.argmax(1) == c))
            best = pool[np.argsort(p[pool, c])][-counts[c]:] if counts[c] else pool[:0]
            assert set(idx[mine & (y == c)].tolist()) == set(best.tolist())


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_self_train_refits_the_head_blind_to_target_emotion(pair_factory, task) -> None:
    src, tgt, feats = pair_factory(seed=2, n_source=160, n_target=96, dim=8)
    garbled = tgt.assign(emotion=tgt["emotion"].sample(frac=1.0, random_state=5).to_numpy())
    cfg = {**LEVER_TINY, "self_train": 0.3, "self_train_rounds": 2, "task": task}
    emotion = "angry" if task == "binary" else None
    kw = dict(source=src, features=feats, method="pa", emotion=emotion, seed=0, progress=False)
    a = fit(target=tgt, config=cfg, **kw)
    b = fit(target=garbled, config=cfg, **kw)
    plain = fit(target=tgt, config={**cfg, "self_train": 0.0}, **kw)
    rec = a.history["levers"]["self_train"]
    assert rec["fraction"] == 0.3 and len(rec["rounds"]) == 2
    assert all(r["rows"] > 0 and r["steps"] > 0 for r in rec["rounds"])
    pa, pb, p0 = (m.predict_proba(tgt, feats) for m in (a, b, plain))
    np.testing.assert_array_equal(pa, pb)  # target emotion labels never read
    assert not np.allclose(pa, p0)  # the head did change
    # the encoder is untouched: the same embeddings as without self-training
    np.testing.assert_array_equal(a.outputs(tgt, feats).embedding,
                                  plain.outputs(tgt, feats).embedding)
