"""Results store: atomic records, resumability, corrupt records, model folders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fairser.errors import FairserError
from fairser.experiments import ResultsStore


def test_record_round_trip_and_nan(tmp_path):
    store = ResultsStore(tmp_path)
    assert not store.has("a__123")
    store.save("a__123", {"rows": [{"uar": np.float32(0.5), "gc_acc": float("nan")}]})
    assert store.has("a__123")
    rec = store.load("a__123")
    assert rec["run_id"] == "a__123" and rec["rows"][0]["uar"] == 0.5
    assert rec["rows"][0]["gc_acc"] is None
    df = store.rows(["a__123", "missing"])
    assert len(df) == 1
    assert not list(tmp_path.glob("records/.*"))  # no temporary files left behind


def test_truncated_record_counts_as_unfinished(tmp_path):
    store = ResultsStore(tmp_path)
    store.record_path("b__1").parent.mkdir(parents=True)
    store.record_path("b__1").write_text('{"rows": [')
    assert not store.has("b__1")
    with pytest.raises(FairserError, match="delete the file and rerun"):
        store.load("b__1")


class _Model:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "weights.safetensors").write_bytes(b"x")
        if self.fail:
            raise RuntimeError("disk full")


def test_model_folder_is_published_whole(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(RuntimeError):
        store.save_model("m__1", _Model(fail=True), {"method": "pa"})
    assert not store.model_dir("m__1").exists()
    assert not any(p.name.startswith(".") for p in (tmp_path / "models").iterdir())
    folder = store.save_model("m__1", _Model(), {"method": "pa", "x": math.inf})
    assert (folder / "model" / "weights.safetensors").is_file()
    assert (folder / "run.json").is_file()


def test_embeddings_round_trip(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.save_embeddings("e__1", embeddings=np.ones((3, 2), np.float32),
                                 gender=np.array(["M", "F", "M"]))
    with np.load(path, allow_pickle=False) as npz:
        assert npz["embeddings"].shape == (3, 2) and list(npz["gender"]) == ["M", "F", "M"]
