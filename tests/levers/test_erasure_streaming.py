"""Frame fits of the erasers stream their items: the same eraser as the all-in-memory fit on
every frame vector stacked, while holding only a chunk of frames and an item or two."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from fairser.levers import GenderEraser, LeverError, QuadraticGenderEraser
from fairser.levers import erasure as erasure_module

KINDS = {"leace": GenderEraser, "qleace": QuadraticGenderEraser}
STATE = {"leace": ("_left", "_right", "_bias"), "qleace": ("_means", "_centre", "_maps")}
TOL = {"rtol": 1e-9, "atol": 1e-10}  # same moments, accumulated in another order


def _utterances(seed: int = 0, n: int = 80, layers: int = 2, dim: int = 5):
    """Variable-length (L, T, D) frames whose genders differ in mean and spread."""
    rng = np.random.default_rng(seed)
    items, genders = [], []
    for i in range(n):
        g = ("F", "M", "X")[i % 3]
        t = int(rng.integers(1, 30))
        x = rng.normal(size=(layers, t, dim)) * (1.0 + 0.5 * (i % 3))
        x[:, :, 0] += {"F": -1.0, "M": 1.5, "X": 0.3}[g]
        items.append(x.astype(np.float32))
        genders.append(g)
    return items, genders


def _stacked(items, genders):
    """The old all-in-memory form: every frame vector (L*D wide) with its utterance's gender."""
    flat = np.concatenate([np.moveaxis(x, 1, 0).reshape(x.shape[1], -1) for x in items])
    per_frame = np.concatenate([[g] * x.shape[1] for x, g in zip(items, genders, strict=True)])
    return flat.astype(np.float64), per_frame


class _Live:
    """A generator of the items that counts how many of them are alive at once."""

    def __init__(self, items) -> None:
        self.items, self.refs, self.most = items, [], 0

    def __iter__(self):
        for x in self.items:
            self.most = max(self.most, sum(r() is not None for r in self.refs))
            item = x.copy()  # a fresh array per read, as a reader gives
            self.refs.append(weakref.ref(item))
            yield item
            del item


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("chunk", [7, 64, None], ids=["chunk7", "chunk64", "default"])
def test_streamed_frame_fit_is_the_stacked_fit(kind, chunk, monkeypatch) -> None:
    if chunk is not None:  # chunks that cut utterances, many updates
        monkeypatch.setattr(erasure_module, "_MIN_CHUNK_FRAMES", chunk)
        monkeypatch.setattr(erasure_module, "_CHUNK_BYTES", 8)
    items, genders = _utterances()
    flat, per_frame = _stacked(items, genders)
    live = _Live(items)
    streamed = KINDS[kind]().fit_frames(iter(live), sensitive_features=genders)
    stacked = KINDS[kind]().fit(flat, sensitive_features=per_frame)
    assert streamed.classes == stacked.classes == ["F", "M", "X"]
    for name in STATE[kind]:
        np.testing.assert_allclose(getattr(streamed, name), getattr(stacked, name), **TOL)
    args = {"groups": per_frame} if kind == "qleace" else {}
    np.testing.assert_allclose(streamed.transform(flat, **args), stacked.transform(flat, **args),
                               rtol=1e-6, atol=1e-6)
    # the item being read and the one just used, never all of them
    assert live.most <= 2, live.most


def test_a_chunk_holds_a_bounded_number_of_frames(monkeypatch) -> None:
    monkeypatch.setattr(erasure_module, "_MIN_CHUNK_FRAMES", 16)
    monkeypatch.setattr(erasure_module, "_CHUNK_BYTES", 8)
    items, genders = _utterances(1, n=30)
    codes = np.arange(len(items)) % 3
    chunks = [(x.copy(), c.copy()) for x, c in erasure_module.frame_chunks(iter(items), codes)]
    assert all(len(x) == 16 for x, _ in chunks[:-1]) and 0 < len(chunks[-1][0]) <= 16
    flat, _ = _stacked(items, genders)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in chunks]), flat)
    lengths = [x.shape[1] for x in items]
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]),
                                  np.repeat(codes, lengths))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_frame_fit_refuses_bad_items(kind) -> None:
    items, genders = _utterances(2, n=12)
    lever = KINDS[kind]
    with pytest.raises(LeverError, match="11 items for 12 sensitive_features"):
        lever().fit_frames(iter(items[:11]), sensitive_features=genders)
    with pytest.raises(LeverError, match="more items than the 11"):
        lever().fit_frames(iter(items), sensitive_features=genders[:11])
    bad = [x.copy() for x in items]
    bad[3][0, 0, 0] = np.nan
    with pytest.raises(LeverError, match="item 3 holds NaN"):
        lever().fit_frames(iter(bad), sensitive_features=genders)
    with pytest.raises(LeverError, match="one width"):
        lever().fit_frames(iter([items[0], items[1][:, :, :3]]), sensitive_features=["F", "M"])


def test_quadratic_frame_fit_needs_two_frames_per_gender() -> None:
    items = [np.ones((1, 5, 3)), np.zeros((1, 1, 3))]
    with pytest.raises(LeverError, match=r"frames per group \{'F': 5, 'M': 1\}"):
        QuadraticGenderEraser().fit_frames(iter(items), sensitive_features=["F", "M"])
