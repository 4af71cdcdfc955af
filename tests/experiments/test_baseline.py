"""The linear baseline's z-norm options, per-speaker ones included (issue 10's reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments import parse_config, run_experiment
from fairser.experiments.baseline import speaker_normed


class _Frames:
    """Feature look-alike: key -> (1, T, 2) frames."""

    n_layers, dim = 1, 2

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> np.ndarray:
        return self._data[key]


def _rows(specs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"corpus": ["c"] * len(specs), "utt_id": [u for u, _ in specs],
                         "speaker": [s for _, s in specs]})


def test_speaker_normed_uses_each_speakers_own_statistics():
    # speaker a's utterances sit around 10, speaker b's around -5, each with its own spread
    feats = _Frames({
        "c/a1": np.array([[[9.0, 1.0], [11.0, 1.0]]]), "c/a2": np.array([[[12.0, 3.0]] * 2]),
        "c/b1": np.array([[[-5.0, 0.0]] * 3]), "c/b2": np.array([[[-7.0, 4.0]]]),
    })
    rows = _rows([("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")])
    z = speaker_normed(feats, rows, rows, frames=False)
    # utterance level: each speaker's two pooled rows become -1 and +1 in every dimension
    np.testing.assert_allclose(z[:, 0], [-1, 1, 1, -1], atol=1e-5)
    np.testing.assert_allclose(z[:, 1], [-1, 1, -1, 1], atol=1e-5)
    zf = speaker_normed(feats, rows, rows, frames=True)
    # frame level: speaker a's frames 9, 11, 12, 12 (mean 11, std sqrt(1.5))
    np.testing.assert_allclose(zf[0, 0], (10 - 11) / np.sqrt(1.5), atol=1e-5)
    np.testing.assert_allclose(zf[1, 0], (12 - 11) / np.sqrt(1.5), atol=1e-5)
    # b's frames -5, -5, -5, -7: mean -5.5, std sqrt(0.75)
    np.testing.assert_allclose(zf[3, 0], (-7 + 5.5) / np.sqrt(0.75), atol=1e-5)
    assert z.dtype == np.float32 and z.shape == (4, 2)


def test_speaker_with_one_row_falls_back_to_its_corpus():
    feats = _Frames({"c/a1": np.array([[[1.0, 0.0]]]), "c/a2": np.array([[[3.0, 2.0]]]),
                     "c/b1": np.array([[[5.0, 4.0]]])})
    rows = _rows([("a1", "a"), ("a2", "a"), ("b1", "b")])
    z = speaker_normed(feats, rows, rows, frames=False)
    # b has one utterance: corpus statistics of 1, 3, 5 (mean 3, std sqrt(8/3))
    np.testing.assert_allclose(z[2, 0], 2 / np.sqrt(8 / 3), atol=1e-5)
    assert np.isfinite(z).all()


@pytest.mark.parametrize("norm", ["per-speaker", "per-speaker-frames"])
def test_grid_runs_the_per_speaker_baseline_with_its_own_id(small_settings, tmp_path, norm):
    settings = {**small_settings, "methods": ["pa"], "seeds": [0], "probe": {"enabled": False}}
    results = {}
    for label, extra in (("corpus", {}), ("speaker", {"linear_baseline_norm": norm})):
        out = run_experiment(parse_config({**settings, **extra}), out_dir=tmp_path / label,
                             progress=False, console=Console(quiet=True),
                             backend=FakeLayers().backend())
        base = out.results[out.results["method"] == "linear-baseline"]
        assert (base["status"] == "ok").all() and base["uar"].notna().all()
        assert set(base["role"]) == {"source", "target"}
        results[label] = base
    # the planted emotion signal survives per-speaker normalisation
    assert (results["speaker"]["uar"] > 0.6).all()
    # another option, another fit id (the per-corpus baseline's id is unchanged by the option)
    assert set(results["corpus"]["run_id"]).isdisjoint(results["speaker"]["run_id"])


def test_unknown_baseline_norm_is_a_config_error(small_settings):
    with pytest.raises(ConfigError, match="linear_baseline_norm"):
        parse_config({**small_settings, "linear_baseline_norm": "per-speakr"})
