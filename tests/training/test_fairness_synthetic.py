"""The methods on the synthetic corpus pair (espeak-ng voices, log-mel features).

The source has a planted gender shortcut (most angry utterances male, most happy and sad ones
female); the target is balanced. Measured here with fixed seeds (means over two), in a compact
configuration with reversal coefficient beta = 1:

- PA's target dSP is higher than PA-CFA's (L_GSim on the gender branch, behind the reversal;
  with ``gsim_on: shared`` L_GSim pulls the genders apart in the very embedding the reversal
  tries to clean, and on this pair PA-CFA's dSP was then no lower than PA's, 0.21 vs 0.18,
  measured outside the test suite to keep it fast);
- the model's own gender head ends near chance on the target for PA-Adv and PA-CFA;
- an independent probe (logistic regression on the frozen embeddings, speaker-disjoint) is
  measured and recorded, never asserted to drop: adversarial training fools its own
  discriminator while gender often stays linearly decodable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fairser.training import fit

SEEDS = (0, 1)
COMPACT = {
    "model": {"d_model": 32, "n_heads": 2, "ff_dim": 64, "embed_dim": 32, "gc_hidden": 16},
    "frame_stride": 4,
    "stage1_epochs": 10,
    "stage2_epochs": 8,
    "batch_size": 32,
    "patience": 10,
    "beta": 1.0,
    "num_threads": 1,
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    synthetic = pytest.importorskip("fairser.corpora.synthetic")
    features = pytest.importorskip("fairser.features")
    cache = tmp_path_factory.getbasetemp() / "cache"
    src, tgt = synthetic.generate_pair(cache / "synthetic", seed=0)
    feats = features.extract(
        pd.concat([src, tgt], ignore_index=True), "logmel", cache_dir=cache, progress=False
    )
    return src, tgt, feats


def _scores(model, tgt, feats) -> dict[str, float]:
    g = tgt["gender"].astype("string").to_numpy(dtype=object)
    p = model.predict(tgt, feats)
    y = model.encode_labels(tgt)
    out = {
        "uar": float(np.mean([(p[y == c] == c).mean() for c in (0, 1)])),
        "dsp": float(abs(p[g == "M"].mean() - p[g == "F"].mean())),
    }
    att = model.attribute_predict(tgt, feats)
    out["gc_acc"] = float("nan") if att is None else float((att == g).mean())
    emb = model.embed(tgt, feats)
    spk = tgt["speaker"].astype("string").to_numpy(dtype=object)
    speakers = sorted(set(spk))
    test_spk = set(speakers[::3])  # every third speaker held out: both genders in each part
    te = np.isin(spk, list(test_spk))
    clf = LogisticRegression(max_iter=3000).fit(emb[~te], g[~te])
    pred = clf.predict(emb[te])
    out["probe"] = float(np.mean([(pred[g[te] == v] == v).mean() for v in ("F", "M")]))
    return out


@pytest.mark.slow
def test_cfa_lowers_target_dsp_and_fools_its_gender_head(synth, record_property) -> None:
    src, tgt, feats = synth
    runs = {
        "pa": ("pa", {}),
        "pa-adv": ("pa-adv", {}),
        "pa-cfa(gender_branch)": ("pa-cfa", {"gsim_on": "gender_branch"}),
    }
    res: dict[str, list[dict[str, float]]] = {}
    for name, (method, extra) in runs.items():
        for seed in SEEDS:
            m = fit(
                source=src,
                target=tgt,
                features=feats,
                method=method,
                emotion="angry",
                config={**COMPACT, **extra},
                seed=seed,
                progress=False,
            )
            res.setdefault(name, []).append(_scores(m, tgt, feats))
    mean = {n: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for n, rs in res.items()}
    for name, vals in mean.items():
        record_property(name, {k: round(v, 3) for k, v in vals.items()})
        print(name, {k: round(v, 3) for k, v in vals.items()})
    # the shortcut is there: PA's predictions differ by gender on the balanced target
    assert mean["pa"]["dsp"] > 0.1
    assert mean["pa"]["dsp"] > mean["pa-cfa(gender_branch)"]["dsp"]
    for name in ("pa-adv", "pa-cfa(gender_branch)"):
        assert abs(mean[name]["gc_acc"] - 0.5) <= 0.12, (name, mean[name])
        assert mean[name]["uar"] > 0.65  # fairness terms did not destroy the emotion task
    # the independent probe: measured, bounded to a valid balanced accuracy, never assumed low
    for vals in mean.values():
        assert 0.0 <= vals["probe"] <= 1.0
