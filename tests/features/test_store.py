"""Feature store and audio hash cache."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from fairser.errors import FeatureError
from fairser.features.entry import entry_shape, read_entry
from fairser.features.hashcache import HashCache
from fairser.features.store import FeatureStore


def test_hash_cache_reuses_and_invalidates(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"alpha" * 100)
    b.write_bytes(b"beta" * 100)
    cache = HashCache(tmp_path / "features")
    read: list[int] = []
    first = cache.hash_files([str(a), str(b), str(a)], on_hashed=read.append)
    assert first[str(a)] == hashlib.sha256(b"alpha" * 100).hexdigest() and len(read) == 2
    read.clear()
    assert cache.hash_files([str(a), str(b)], on_hashed=read.append) == first and not read
    b.write_bytes(b"BETA" * 100)  # same size, new content (and ctime)
    again = cache.hash_files([str(a), str(b)], on_hashed=read.append)
    assert len(read) == 1 and again[str(b)] == hashlib.sha256(b"BETA" * 100).hexdigest()
    gone = cache.hash_files([str(tmp_path / "gone.bin")])
    assert isinstance(gone[str(tmp_path / "gone.bin")], FeatureError)


def test_hash_cache_survives_a_corrupt_table(tmp_path: Path) -> None:
    root = tmp_path / "features"
    root.mkdir()
    (root / "audio-hashes.sqlite").write_bytes(b"this is not a database")
    a = tmp_path / "a.bin"
    a.write_bytes(b"x")
    got = HashCache(root).hash_files([str(a)])
    assert got[str(a)] == hashlib.sha256(b"x").hexdigest()


def test_put_get_errors_and_layout(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, "hf:/some/folder", {"frontend": "x", "k": 1}).open()
    assert store.folder.name.startswith("hf_some_folder-")
    assert (store.folder / "frontend.json").is_file()
    h = "ab" + "0" * 62
    assert not store.has(h)
    path = store.put(h, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert path == store.folder / "ab" / f"{h}.npy" and store.has(h)
    arr = read_entry(path)
    assert arr.dtype == np.float16 and arr.shape == (2, 3, 4) and not arr.flags.writeable
    assert entry_shape(path) == (2, 3, 4)
    with pytest.raises(FeatureError, match=r"expected \(L, T, D\)"):
        store.put(h, np.zeros((3, 4)))
    store.put_error("cd" + "1" * 62, "bad because")
    assert store.error("cd" + "1" * 62) == "bad because" and store.error(h) is None
    other = FeatureStore(tmp_path, "hf:/some/folder", {"frontend": "x", "k": 2})
    assert other.folder != store.folder


DAMAGE = {"empty": "empty file", "header": "not a valid npy file", "truncated": "truncated",
          "trailing": "beyond the array", "layers": "does not match", "dim": "does not match",
          "rank": "is not (L, T, D)", "dtype": "dtype float32", "nan": "non-finite",
          "inf-last-frame": "non-finite", "folder": "a folder or special file"}


@pytest.mark.parametrize("kind", [*DAMAGE, "nan-unsampled"])
def test_damaged_entries_are_detected_and_reported_in_one_line(kind: str, tmp_path: Path,
                                                               damage_entry) -> None:
    store = FeatureStore(tmp_path, "x", {}, n_layers=1, dim=8).open()
    h = "ef" + "2" * 62
    path = store.put(h, np.ones((1, 50, 8), np.float32))
    assert store.problem(h) is None and store.problem(h, full=True) is None
    assert read_entry(path, store.spec).shape == (1, 50, 8)
    damage_entry(path, kind)
    if kind == "nan-unsampled":  # the cheap check samples; the full check reads every value
        assert store.problem(h) is None
        assert "non-finite" in store.problem(h, full=True)
        return
    reason = store.problem(h)
    assert reason is not None and DAMAGE[kind] in reason, reason
    assert store.problem(h, full=True) is not None
    with pytest.raises(FeatureError) as info:
        store.read(h)
    message = str(info.value)
    assert message.startswith(f"{path}: damaged feature entry") and "\n" not in message
    assert "rerun `fairser features extract`" in message


def test_missing_entry_and_header_only_shape(tmp_path: Path, damage_entry) -> None:
    store = FeatureStore(tmp_path, "x", {}, n_layers=1, dim=8).open()
    assert store.problem("ab" + "0" * 62) == "missing"
    with pytest.raises(FeatureError, match="missing"):
        store.read("ab" + "0" * 62)
    path = store.put("cd" + "0" * 62, np.ones((1, 5, 8), np.float32))
    damage_entry(path, "empty")
    with pytest.raises(FeatureError, match="empty file"):
        entry_shape(path)


def test_put_refuses_what_reads_would_reject(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, "x", {}, n_layers=2, dim=4).open()
    with pytest.raises(FeatureError, match=r"expected \(L, T, D\) = \(2, T>=1, 4\)"):
        store.put("ab" + "0" * 62, np.zeros((1, 3, 4)))
    with pytest.raises(FeatureError, match="NaN or infinite"):
        store.put("ab" + "0" * 62, np.full((2, 3, 4), np.nan))
    assert not store.has("ab" + "0" * 62)


def test_open_clears_only_stale_temp_files(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, "x", {}).open()
    old, fresh = store.folder / "tmp" / "old.tmp", store.folder / "tmp" / "fresh.tmp"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    past = time.time() - 7200
    os.utime(old, (past, past))
    store.open()
    assert not old.exists() and fresh.exists()


def test_hash_progress_callbacks_count_only_files_read(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        f = tmp_path / f"{i}.bin"
        f.write_bytes(bytes([i]) * (i + 1))
        files.append(str(f))
    cache = HashCache(tmp_path / "features")
    cache.hash_files(files[:2])
    started: list[int] = []
    sizes: list[int] = []
    cache.hash_files(files, on_start=started.append, on_hashed=sizes.append)
    assert started == [3] and sorted(sizes) == [3, 4, 5]
