"""predict_files: model choice and probability columns, against the fake backend."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from fairser.errors import AudioError, ConfigError
from fairser.experiments import find_models, parse_config, predict_files, run_experiment


@pytest.fixture
def finished_run(small_settings, fake_layers, tmp_path):
    cfg = parse_config({**small_settings, "linear_baseline": False})
    run_experiment(cfg, out_dir=tmp_path / "run", progress=False, console=Console(quiet=True),
                   backend=fake_layers.backend())
    return tmp_path / "run"


@pytest.fixture
def wavs(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, np.random.default_rng(i).normal(0, 0.1, 8000).astype(np.float32), 16000)
        paths.append(path)
    return paths


def test_one_column_per_emotion_from_the_chosen_models(finished_run, fake_layers, wavs):
    models = find_models(finished_run)
    assert len(models) == 2 * 2 * 2  # methods x emotions x seeds
    df = predict_files(finished_run, wavs, backend=fake_layers.backend())
    assert list(df.columns) == ["file", "p_angry", "p_happy", "top"]
    assert df[["p_angry", "p_happy"]].to_numpy().min() >= 0
    assert df[["p_angry", "p_happy"]].to_numpy().max() <= 1
    used = df.attrs["models"]
    assert {m["method"] for m in used} == {"pa-cfa"} and {m["seed"] for m in used} == {0}
    assert set(df["top"]) <= {"angry", "happy"}
    other = predict_files(finished_run, wavs, method="source-only", seed=1,
                          backend=fake_layers.backend())
    assert {m["method"] for m in other.attrs["models"]} == {"source-only"}
    single = predict_files(models[0][0], wavs[:1], backend=fake_layers.backend())
    assert len(single.columns) == 3 and len(single) == 1


def test_bad_choices_and_files_are_one_line_errors(finished_run, fake_layers, wavs, tmp_path):
    with pytest.raises(ConfigError, match=r"no saved model with method 'pa-x'; choose one of"):
        predict_files(finished_run, wavs, method="pa-x", backend=fake_layers.backend())
    with pytest.raises(AudioError, match="missing.wav: audio file not found"):
        predict_files(finished_run, [tmp_path / "missing.wav"], backend=fake_layers.backend())
    with pytest.raises(ConfigError, match="no audio files"):
        predict_files(finished_run, [], backend=fake_layers.backend())


def test_missing_file_and_folder_messages_fit_predict(finished_run, fake_layers, tmp_path):
    with pytest.raises(AudioError, match=r"missing.wav: audio file not found; check the path$"):
        predict_files(finished_run, [tmp_path / "missing.wav"], backend=fake_layers.backend())
    folder = tmp_path / "clips"
    folder.mkdir()
    with pytest.raises(AudioError, match=r"clips: is a folder, not an audio file; pass the files"):
        predict_files(finished_run, [folder], backend=fake_layers.backend())
