"""Streaming data path: batches read from the store, length bucketing, DataLoader workers.

The reference probabilities below were produced by the pre-streaming implementation (every
row's frames stacked into one padded tensor, commit 4577432) on the same generated pair, seed
and config; ``bucketing: false`` must reproduce them (same batches, same arithmetic).
"""

from __future__ import annotations

import numpy as np
import pytest

from fairser.training import fit
from fairser.training.samplers import BUCKET_POOL, bucket_batches, mixed_plan, source_plan

# fit(..., config=FAST + stage1_epochs=2, stage2_epochs=2, seed=0).predict_proba(tgt[:6])
# with the stacked-tensor implementation (before streaming)
STACKED_REFERENCE = {
    "source-only": [0.37709963, 0.2982474, 0.39779255, 0.35746655, 0.31980321, 0.32792386],
    "pa-cfa": [0.43142045, 0.26484978, 0.44555706, 0.3773675, 0.28838691, 0.29617298],
}


@pytest.mark.parametrize("method", sorted(STACKED_REFERENCE))
def test_bucketing_off_reproduces_the_stacked_implementation(
    small_pair, fast_config, method
) -> None:
    src, tgt, feats = small_pair
    cfg = {**fast_config, "stage1_epochs": 2, "stage2_epochs": 2, "bucketing": False}
    m = fit(
        source=src,
        target=None if method == "source-only" else tgt,
        features=feats,
        method=method,
        emotion="angry",
        config=cfg,
        seed=0,
        progress=False,
    )
    # float tolerance: same operations on the same batches; only BLAS may round differently
    assert np.allclose(m.predict_proba(tgt.iloc[:6], feats), STACKED_REFERENCE[method], atol=1e-5)


def test_bucketing_keeps_rows_and_sizes_and_cuts_padding() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    lengths = rng.integers(5, 200, n)
    labels = rng.integers(0, 2, n)
    plain = source_plan(labels, batch_size=32, balanced=False, rng=np.random.default_rng(1))
    bucketed = source_plan(
        labels, batch_size=32, balanced=False, rng=np.random.default_rng(1), lengths=lengths
    )
    # every row exactly once, same batch sizes, and bucketing=off is the plain plan
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(n))
    assert sorted(len(b) for b in bucketed) == sorted(len(b) for b in plain)

    def padding(plan):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in plan)

    assert padding(bucketed) < 0.25 * padding(plain)
    # each batch comes from one pool of BUCKET_POOL consecutive plain batches
    pools = [set(np.concatenate(plain[i : i + BUCKET_POOL]).tolist()) for i in range(0, 32, 16)]
    assert all(any(set(b.tolist()) <= p for p in pools) for b in bucketed)
    # a balanced draw (with replacement) keeps each drawn row's count
    drawn = source_plan(labels, batch_size=32, balanced=True, rng=np.random.default_rng(2))
    again = bucket_batches(drawn, lengths, rng=np.random.default_rng(3))
    assert np.array_equal(np.sort(np.concatenate(drawn)), np.sort(np.concatenate(again)))


def test_mixed_plan_bucketing_pairs_long_target_rows_with_long_source_rows() -> None:
    rng = np.random.default_rng(0)
    ls, lt = rng.integers(5, 200, 600), rng.integers(5, 200, 400)
    labels = rng.integers(0, 2, 600)
    kw = dict(batch_size=64, target_fraction=0.5, balanced=False)
    plain = mixed_plan(labels, 400, rng=np.random.default_rng(4), **kw)
    rng4 = np.random.default_rng(4)
    plan = mixed_plan(labels, 400, rng=rng4, lengths=ls, target_lengths=lt, **kw)
    assert all(len(t) for _, t in plan)  # every step has target rows
    assert sorted(np.concatenate([s for s, _ in plan]).tolist()) == list(range(600))

    def padding(p):
        return sum(
            max(int(ls[s].max()), int(lt[t].max())) * (len(s) + len(t))
            - int(ls[s].sum())
            - int(lt[t].sum())
            for s, t in p
        )

    assert padding(plan) < 0.35 * padding(plain)


def test_workers_and_bucketing_on_give_one_model(small_pair, fast_config) -> None:
    src, tgt, feats = small_pair
    kw = dict(source=src, target=tgt, features=feats, method="pa-adv", emotion="angry", seed=4)
    cfg = {**fast_config, "stage1_epochs": 2, "stage2_epochs": 1, "bucketing": True}
    a = fit(config=cfg, progress=False, **kw)
    b = fit(config={**cfg, "num_workers": 2}, progress=False, **kw)
    # workers only read rows: same batches, same dropout masks, same model
    assert np.array_equal(a.predict_proba(tgt, feats), b.predict_proba(tgt, feats))
    assert a.meta["fingerprint"] == b.meta["fingerprint"]


@pytest.mark.parametrize(
    "levers",
    [{}, {"erase": "leace", "erase_on": "inputs"}, {"erase": "qleace", "erase_on": "inputs"}],
    ids=["plain", "leace-inputs", "qleace-inputs"],
)
def test_a_fit_never_holds_the_corpus_frames(pair_factory, fast_config, levers) -> None:
    """Peak memory allocated during fit + predict stays far below the features' size, also
    while fitting an input eraser (on every frame vector of the source and target rows)."""
    import tracemalloc

    src, tgt, feats = pair_factory(seed=1, n_source=600, n_target=400, dim=96)
    # lengthen every row to 120-240 frames, so that the features dominate everything else
    rng = np.random.default_rng(0)
    for k, a in feats.arrays.items():
        reps = int(rng.integers(120, 240)) // a.shape[1] + 1
        feats.arrays[k] = np.ascontiguousarray(np.tile(a, (1, reps, 1))[:, :240])
    total = sum(a.nbytes for a in feats.arrays.values())
    cfg = {**fast_config, "frame_stride": 1, "max_frames": 240, "stage1_epochs": 1}
    cfg.update(stage2_epochs=1, model={"d_model": 8, "n_heads": 2, "ff_dim": 8, "embed_dim": 8})
    # cache_mb 0: pure streaming (a fit whose rows fit in cache_mb keeps them by design)
    cfg.update(input_norm="per-corpus", eval_batch_size=32, cache_mb=0, **levers)
    kw = dict(target=tgt, method="pa", emotion="angry", config=cfg, seed=0, progress=False)
    # warm up: the first optimiser step imports torch modules lazily (tens of MB of objects)
    fit(source=src.iloc[:40], features=feats, **kw)
    tracemalloc.start()
    try:
        m = fit(source=src, features=feats, **kw)
        m.predict_proba(tgt, feats)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the stacked implementation allocated more than `total` (padded float16 copy plus the
    # float32 pooled rows); streaming holds a few batches
    assert peak < 0.25 * total, (peak / total, peak, total)


class _HeaderOnlyFeatures:
    """A feature source that knows every key's shape from a 'header' and holds no frames."""

    n_layers, dim = 1, 8

    def __init__(self, keys: set[str]) -> None:
        self._keys = keys

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __getitem__(self, key: str) -> np.ndarray:
        raise AssertionError("make_split must read headers only")

    def shape(self, key: str) -> tuple[int, int, int]:
        return (1, 40 + len(key) % 7, 8)


def test_a_split_costs_about_a_hundred_bytes_per_row() -> None:
    """The row index of a fit (keys, corpora, lengths, labels, groups) grows by about a hundred
    bytes per row: one key string and four numbers, with the corpus names shared by rows."""
    import gc
    import tracemalloc

    import pandas as pd

    from fairser.training.data import LabelSpace, make_split, row_keys

    n = 20_000
    rows = pd.DataFrame(
        {
            "corpus": pd.array(["corpus-a", "corpus-b"] * (n // 2), dtype="string"),
            "utt_id": pd.array([f"utt{i:06d}" for i in range(n)], dtype="string"),
            "emotion": pd.array(["angry", "neutral", "sad", "happy"] * (n // 4), dtype="string"),
            "gender": pd.array(["female", "male"] * (n // 2), dtype="string"),
        }
    )
    feats = _HeaderOnlyFeatures(set(row_keys(rows)))
    labels = LabelSpace("binary", ("rest", "angry"), "angry")
    kw = {"attribute": "gender", "groups": ("female", "male"), "frame_stride": 4}
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        split = make_split(rows, feats, labels=labels, max_frames=96, what="test", **kw)
        gc.collect()
        per_row = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(split) == n and split.lengths.min() >= 10
    assert split.corpora[0] == "corpus-a" and split.corpora[1] == "corpus-b"
    # a 17-character key is a 66-byte str plus its 8-byte slot in the tuple; the corpus column
    # 8 bytes (a shared reference), lengths, y and g 8 bytes each: ~106 bytes. A string per row
    # for the corpus name (what converting the column gives) would add ~57 more.
    assert per_row < 130, f"{per_row:.0f} bytes per row"


class _Counting:
    """A feature source counting the reads of each key (everything else delegated)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.reads: dict[str, int] = {}

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def __contains__(self, key: object) -> bool:
        return key in self._inner

    def __getitem__(self, key: str) -> np.ndarray:
        self.reads[key] = self.reads.get(key, 0) + 1
        return self._inner[key]

    def shape(self, key: str) -> tuple[int, ...]:
        """From the 'header', as a FeatureSet: not a read."""
        return self._inner[key].shape


@pytest.mark.parametrize("input_norm", ["source", "per-speaker"])
def test_a_small_fit_reads_each_row_from_the_store_once(
    small_pair, fast_config, input_norm
) -> None:
    """Rows that fit in cache_mb are read once for every pass of the fit (input statistics,
    per-speaker statistics, the loop's epochs); the model is the one pure streaming gives."""
    src, tgt, feats = small_pair
    kw = dict(source=src, target=tgt, method="pa", emotion="angry", seed=1, progress=False)
    cfg = {**fast_config, "stage1_epochs": 2, "stage2_epochs": 2, "input_norm": input_norm}
    cached, streamed = _Counting(feats), _Counting(feats)
    a = fit(features=cached, config=cfg, **kw)
    b = fit(features=streamed, config={**cfg, "cache_mb": 0}, **kw)
    assert cached.reads and max(cached.reads.values()) == 1, max(cached.reads.values())
    assert max(streamed.reads.values()) > 2  # every epoch and pass reads again
    assert set(cached.reads) == set(streamed.reads)
    assert np.array_equal(a.predict_proba(tgt, feats), b.predict_proba(tgt, feats))


class _FrameReader:
    """A reader of made-up standardised rows ((L, T, D), T varying), counting its reads."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def read(self, key: str, corpus: str, *, what: str = "features") -> np.ndarray:
        self.reads.append(key)
        rng = np.random.default_rng(int(key[1:]) + (1000 if corpus == "tgt" else 0))
        x = rng.normal(size=(2, 3 + int(key[1:]) % 7, 4))
        x[:, :, 0] += 1.0 if int(key[1:]) % 2 else -1.0
        return x.astype(np.float32)


@pytest.mark.parametrize("erase", ["leace", "qleace"])
def test_input_eraser_is_fitted_on_the_frames_of_the_gendered_rows(erase) -> None:
    """Source-train and target rows with a gender, every frame vector (L*D) with its row's
    gender; rows without one and parts without genders are never read."""
    from types import SimpleNamespace

    from fairser.levers import GenderEraser, QuadraticGenderEraser
    from fairser.training.input_levers import fit_input_eraser

    def split(corpus, n):
        return SimpleNamespace(keys=[f"u{i}" for i in range(n)], corpora=[corpus] * n)

    src, tgt, dev = split("src", 30), split("tgt", 20), split("dev", 10)
    g_src = np.asarray([None if i % 5 == 0 else "FM"[i % 2] for i in range(30)], dtype=object)
    g_tgt = np.asarray(["MF"[i % 2] for i in range(20)], dtype=object)
    cfg = SimpleNamespace(erase=erase, erase_strength=1.0, attribute="gender")
    reader = _FrameReader()
    got = fit_input_eraser(reader, [(src, g_src), (tgt, g_tgt), (dev, None)], cfg)
    kept = [
        (s, i, g[i])
        for s, g in ((src, g_src), (tgt, g_tgt))
        for i in range(len(s.keys))
        if g[i] is not None
    ]
    assert reader.reads == [s.keys[i] for s, i, _ in kept]  # each gendered row once
    frames = [_FrameReader().read(s.keys[i], s.corpora[i]) for s, i, _ in kept]
    flat = np.concatenate([np.moveaxis(x, 1, 0).reshape(x.shape[1], -1) for x in frames])
    per_frame = np.concatenate(
        [[g] * x.shape[1] for x, (_, _, g) in zip(frames, kept, strict=True)]
    )
    lever = GenderEraser if erase == "leace" else QuadraticGenderEraser
    want = lever().fit(flat, sensitive_features=per_frame)
    assert isinstance(got, lever) and got.classes == want.classes == ["F", "M"]
    for a, b in zip(
        got.to_dict()["arrays"].values(), want.to_dict()["arrays"].values(), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
