"""openSMILE frontends: shapes, equality with a direct openSMILE call, workers, dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import opensmile
import pandas as pd
import pytest
import soundfile as sf

from fairser.features import extract
from fairser.features.opensmile import OpenSmileFrontend


@pytest.mark.parametrize(("name", "feature_set", "level", "dim", "frame_rate"), [
    ("egemaps-lld", "eGeMAPSv02", "LowLevelDescriptors", 25, 100.0),
    ("compare-lld", "ComParE_2016", "LowLevelDescriptors", 65, 100.0),
    ("egemaps-functionals", "eGeMAPSv02", "Functionals", 88, 0.0),
])
def test_matches_direct_opensmile(name, feature_set, level, dim, frame_rate, make_corpus,
                                  tmp_path: Path) -> None:
    df = make_corpus([1.2, 0.8], sample_rate=22050)  # resampled to 16 kHz on the way in
    fs = extract(df, name, cache_dir=tmp_path, progress=False)
    assert (fs.dim, fs.frame_rate, fs.n_layers) == (dim, frame_rate, 1) and fs.bad.empty
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                            feature_level=getattr(opensmile.FeatureLevel, level))
    import soxr

    x, sr = sf.read(df.path[0], dtype="float32")
    ref = smile.process_signal(soxr.resample(x, sr, 16000, quality="HQ"), 16000).to_numpy()
    got = fs["syn/utt000"]
    assert got.shape == (1, ref.shape[0], dim)
    if name == "egemaps-functionals":
        assert got.shape[1] == 1
    np.testing.assert_allclose(got[0].astype(np.float64), ref, rtol=2e-3, atol=1e-3)


def test_compare_keeps_large_values_in_float32(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([1.0])
    fs = extract(df, "compare-lld", cache_dir=tmp_path, progress=False)
    x = fs["syn/utt000"]
    assert x.dtype == np.float32 and np.abs(x).max() > 65504  # would overflow float16
    forced = extract(df, "compare-lld", dtype="float16", cache_dir=tmp_path, progress=False)
    assert len(forced) == 0 and "overflow float16" in forced.bad.reason[0]


def test_workers_and_too_short(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([0.6, 0.9, 1.1])
    short = Path(df.path[0]).with_name("short.wav")
    sf.write(short, np.full(40, 0.1, np.float32), 16000)
    full = pd.concat([df[["corpus", "utt_id", "path"]],
                      pd.DataFrame({"corpus": ["syn"], "utt_id": ["short"],
                                    "path": [str(short)]})], ignore_index=True)
    one = extract(full, "egemaps-lld", cache_dir=tmp_path / "a", progress=False)
    two = extract(full, "egemaps-lld", cache_dir=tmp_path / "b", workers=2, progress=False)
    assert len(one) == len(two) == 3
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    assert list(one.bad.utt_id) == list(two.bad.utt_id) == ["short"]
    assert "too short" in one.bad.reason[0]


def test_frontend_pickles_without_native_state() -> None:
    import pickle

    fe = OpenSmileFrontend("egemaps-lld")
    fe.load()
    clone = pickle.loads(pickle.dumps(fe))
    assert clone._smile is None and clone.dim == 25
    x = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    np.testing.assert_array_equal(clone.compute([x])[0], fe.compute([x])[0])
