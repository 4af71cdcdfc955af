"""extract(): store round trip, caching, invalidation, bad files, workers, FeatureSet API."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fairser.errors import ConfigError, FeatureError
from fairser.features import FeatureSet, Frontend, extract
from fairser.features.entry import is_mapped
from fairser.features.logmel import LogMelFrontend


def test_logmel_roundtrip_and_cached_rerun(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([1.0, 2.5, 0.5])
    fs = extract(df, "logmel", cache_dir=tmp_path / "c", progress=False)
    assert isinstance(fs, FeatureSet)
    assert (fs.frontend, fs.layers, fs.n_layers, fs.dim, fs.frame_rate) == (
        "logmel", (0,), 1, 80, 100.0)
    assert len(fs) == 3 and list(fs.keys()) == ["syn/utt000", "syn/utt001", "syn/utt002"]
    x = fs["syn/utt001"]
    assert is_mapped(x) and x.dtype == np.float16 and x.shape == (1, 251, 80)
    assert fs.shape("syn/utt001") == (1, 251, 80) and fs.n_frames("syn/utt002") == 51
    ref = LogMelFrontend().compute([sf.read(df.path[1], dtype="float32")[0]])[0]
    np.testing.assert_allclose(x.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    assert fs.stats.n_computed == 3 and fs.stats.n_cached == 0 and fs.bad.empty
    assert fs.stats.audio_s == pytest.approx(4.0)

    again = extract(df, "logmel", cache_dir=tmp_path / "c", progress=False)
    assert again.stats.n_computed == 0 and again.stats.n_cached == 3
    assert again.stats.hashed == 0  # hashes came from the hash cache
    assert again.path("syn/utt001") == fs.path("syn/utt001")


def test_changed_audio_or_setting_is_recomputed(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([1.0, 1.0])
    cache = tmp_path / "c"
    first = extract(df, "logmel", cache_dir=cache, progress=False)
    old = first["syn/utt000"].copy()
    x, sr = sf.read(df.path[0], dtype="float32")
    sf.write(df.path[0], x * 0.1, sr)  # same path and size, new content
    st = os.stat(df.path[0])
    os.utime(df.path[0], ns=(st.st_atime_ns, os.stat(df.path[1]).st_mtime_ns))
    second = extract(df, "logmel", cache_dir=cache, progress=False)
    assert second.stats.n_computed == 1 and second.stats.n_cached == 1
    assert not np.allclose(second["syn/utt000"], old)
    assert second.path("syn/utt000") != first.path("syn/utt000")
    other = extract(df, "logmel", options={"n_mels": 40}, cache_dir=cache, progress=False)
    assert other.stats.n_computed == 2 and other.dim == 40
    assert other["syn/utt001"].shape[-1] == 40
    assert other.folder != second.folder


def test_bad_files_are_listed_and_the_rest_goes_on(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([1.0, 1.0])
    folder = Path(df.path[0]).parent
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(folder / "nan.wav", np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    (folder / "junk.wav").write_bytes(b"not audio at all")
    sf.write(folder / "tiny.wav", np.zeros(100, np.float32), 16000)
    extra = pd.DataFrame({"corpus": "syn", "utt_id": ["empty", "nan", "junk", "gone", "tiny"],
                          "path": [str(folder / n) for n in
                                   ("empty.wav", "nan.wav", "junk.wav", "gone.wav",
                                    "tiny.wav")]})
    full = pd.concat([df[["corpus", "utt_id", "path"]], extra], ignore_index=True)
    fs = extract(full, "logmel", cache_dir=tmp_path / "c", progress=False)
    assert len(fs) == 2 and fs.stats.n_bad == 5
    assert list(fs.bad.columns) == ["corpus", "utt_id", "path", "reason"]
    reasons = dict(zip(fs.bad.utt_id, fs.bad.reason, strict=True))
    assert "empty audio" in reasons["empty"]
    assert "NaN" in reasons["nan"]
    assert "unreadable audio" in reasons["junk"]
    assert "No such file" in reasons["gone"]
    assert "too short" in reasons["tiny"]
    assert all("\n" not in r for r in reasons.values())
    with pytest.raises(KeyError, match="empty audio"):
        fs["syn/empty"]
    # deterministic failures are remembered: the rerun neither decodes nor recomputes them
    again = extract(full, "logmel", cache_dir=tmp_path / "c", progress=False)
    assert again.stats.n_computed == 0 and again.stats.n_bad == 5
    assert dict(zip(again.bad.utt_id, again.bad.reason, strict=True)) == reasons


def test_identical_content_is_computed_once(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([1.0])
    copy = Path(df.path[0]).with_name("copy.wav")
    copy.write_bytes(Path(df.path[0]).read_bytes())
    two = pd.DataFrame({"corpus": ["a", "b"], "utt_id": ["x", "x"],
                        "path": [df.path[0], str(copy)]})
    fs = extract(two, "logmel", cache_dir=tmp_path / "c", progress=False)
    assert fs.stats.n_computed == 1 and len(fs) == 2
    assert fs.path("a/x") == fs.path("b/x")


@pytest.mark.parametrize(("frame", "match"), [
    (pd.DataFrame({"corpus": ["a"], "utt_id": ["x"]}), "lacks column"),
    (pd.DataFrame({"corpus": ["a", "a"], "utt_id": ["x", "x"], "path": ["/p", "/q"]}),
     "share the key a/x"),
    (pd.DataFrame({"corpus": ["a"], "utt_id": ["x"], "path": [None]}), "row 0 .*path is empty"),
])
def test_manifest_errors(frame: pd.DataFrame, match: str, tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match=match):
        extract(frame, "logmel", cache_dir=tmp_path, progress=False)


def test_option_and_name_errors(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([0.5])
    with pytest.raises(ConfigError, match="unknown frontend"):
        extract(df, "mfcc", cache_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="allowed options"):
        extract(df, "logmel", options={"n_mel": 3}, cache_dir=tmp_path, progress=False)
    with pytest.raises(FeatureError, match="workers"):
        extract(df, "logmel", workers=0, cache_dir=tmp_path, progress=False)


class ShapeFrontend(Frontend):
    """A frontend that returns (2, T, 3) features: frame energy and its square, per layer."""

    name = "test-shape"
    frame_rate = 10.0

    def __init__(self) -> None:
        self.layers = (0, 1)

    @property
    def n_layers(self) -> int:
        return 2

    @property
    def dim(self) -> int:
        return 3

    def config(self) -> dict:
        return {"frontend": self.name}

    def compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for s in signals:
            frames = s[: len(s) // 1600 * 1600].reshape(-1, 1600)
            e = (frames ** 2).mean(axis=1)
            f = np.stack([e, e ** 2, np.full_like(e, len(s))], axis=1)
            out.append(np.stack([f, 2 * f]).astype(np.float32))
        return out


def test_frontend_instance_and_pickled_featureset(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([1.0, 2.0])
    fs = extract(df, ShapeFrontend(), cache_dir=tmp_path, progress=False)
    assert fs.frontend == "test-shape" and fs.n_layers == 2 and fs.dim == 3
    assert fs["syn/utt001"].shape == (2, 20, 3)
    clone = pickle.loads(pickle.dumps(fs))
    np.testing.assert_array_equal(clone["syn/utt000"], fs["syn/utt000"])
    with pytest.raises(FeatureError, match="Frontend instance"):
        extract(df, ShapeFrontend(), layers=1, cache_dir=tmp_path, progress=False)


def test_overflowing_features_are_bad_in_float16(make_corpus, tmp_path: Path) -> None:
    class Huge(ShapeFrontend):
        name = "test-huge"

        def compute(self, signals):
            return [np.full((2, 3, 3), 1e6, np.float32) for _ in signals]

    df = make_corpus([0.5])
    fs = extract(df, Huge(), cache_dir=tmp_path, progress=False)
    assert len(fs) == 0 and "overflow float16" in fs.bad.reason[0]
    ok = extract(df, Huge(), cache_dir=tmp_path, dtype="float32", progress=False)
    assert ok["syn/utt000"].dtype == np.float32 and ok["syn/utt000"][0, 0, 0] == 1e6


def test_progress_bar_and_summary(make_corpus, tmp_path: Path, capfd) -> None:
    df = make_corpus([0.5, 0.5])
    extract(df, "logmel", cache_dir=tmp_path, progress=True)
    err = capfd.readouterr().err
    assert "2/2" in err and "audio h/s" in err
    assert "logmel: 2 rows, 0 cached, 2 computed" in err and "0 bad" in err
