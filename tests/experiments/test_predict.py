"""predict_files: model choice and probability columns, against the fake backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments import find_models, parse_config, predict_files, run_experiment
from fairser.experiments.predict import read_predict_manifest


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
    assert list(df.columns) == ["file", "p_angry", "p_happy", "top", "decision", "error"]
    assert df["error"].isna().all()
    assert df[["p_angry", "p_happy"]].to_numpy().min() >= 0
    assert df[["p_angry", "p_happy"]].to_numpy().max() <= 1
    used = df.attrs["models"]
    assert {m["method"] for m in used} == {"pa-cfa"} and {m["seed"] for m in used} == {0}
    assert set(df["top"]) <= {"angry", "happy"}
    other = predict_files(finished_run, wavs, method="source-only", seed=1,
                          backend=fake_layers.backend())
    assert {m["method"] for m in other.attrs["models"]} == {"source-only"}
    single = predict_files(models[0][0], wavs[:1], backend=fake_layers.backend())
    assert len(single.columns) == 5 and len(single) == 1


def test_bad_choices_are_one_line_errors(finished_run, fake_layers, wavs, tmp_path):
    with pytest.raises(ConfigError, match=r"no saved model with method 'pa-x'; choose one of"):
        predict_files(finished_run, wavs, method="pa-x", backend=fake_layers.backend())
    with pytest.raises(ConfigError, match="no audio files"):
        predict_files(finished_run, [], backend=fake_layers.backend())
    with pytest.raises(ConfigError, match="nowhere: no such folder"):
        predict_files(tmp_path / "nowhere", wavs, backend=fake_layers.backend())


def test_bad_files_are_listed_and_the_good_ones_scored(finished_run, fake_layers, wavs,
                                                       tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    files = [wavs[0], tmp_path / "missing.wav", folder, empty, junk, wavs[1]]
    df = predict_files(finished_run, files, backend=fake_layers.backend())
    assert list(df["file"]) == [str(f) for f in files]
    good, bad = df[df["error"].isna()], df[df["error"].notna()]
    assert list(good["file"]) == [str(wavs[0]), str(wavs[1])]
    assert good[["p_angry", "p_happy"]].notna().all().all()
    assert bad[["p_angry", "p_happy"]].isna().all().all() and bad["top"].isna().all()
    errors = dict(zip(bad["file"], bad["error"], strict=True))
    assert errors[str(tmp_path / "missing.wav")] == "audio file not found; check the path"
    assert errors[str(folder)].startswith("is a folder, not an audio file; pass the files")
    assert errors[str(empty)].startswith("empty audio (0 samples)")
    assert errors[str(junk)]  # the audio layer's reason
    assert all("\n" not in e for e in errors.values())


def test_featurisation_failure_is_a_per_file_error(finished_run, fake_layers, wavs,
                                                   monkeypatch):
    from grid_fakes import FakeFeatures

    def extract(manifest, frontend, **kw):  # the first file fails in the frontend
        return FakeFeatures(manifest, bad={f"predict/{manifest['utt_id'].iloc[0]}"})

    monkeypatch.setattr(fake_layers, "extract", extract)
    df = predict_files(finished_run, wavs, backend=fake_layers.backend())
    assert df["error"].iloc[0] == "no features (unreadable)"
    assert df["error"].iloc[1:].isna().all() and df["p_angry"].iloc[1:].notna().all()


def _fake_train_workdir(tmp_path, fake_layers, finished_run):
    """A folder laid out as `fairser train` writes it: <workdir>/model/model.json + weights."""
    import shutil

    src = find_models(finished_run)[0][0] / "model"
    workdir = tmp_path / "run.run"
    shutil.copytree(src, workdir / "model")
    meta = {"method": "pa", "seed": 3, "labels": {"task": "binary", "classes": ["rest", "angry"],
                                                  "positive": "angry", "negatives": None},
            "features": {"frontend": "fake", "layers": [0], "n_layers": 1, "dim": 6}}
    (workdir / "model" / "model.json").write_text(json.dumps(meta))
    return workdir


def test_fairser_train_folder_is_accepted(finished_run, fake_layers, wavs, tmp_path):
    workdir = _fake_train_workdir(tmp_path, fake_layers, finished_run)
    for run_dir in (workdir, workdir / "model"):
        df = predict_files(run_dir, wavs, backend=fake_layers.backend())
        assert list(df.columns) == ["file", "p_angry", "top", "decision", "error"]
        assert df["p_angry"].between(0, 1).all()
        # one binary model: `top` is its emotion only when decided likelier than the rest
        assert list(df["top"]) == ["angry" if p >= 0.5 else "rest" for p in df["p_angry"]]
        assert df.attrs["models"][0]["method"] == "pa" and df.attrs["models"][0]["seed"] == 3


@pytest.mark.parametrize("content", ["{}", "[]", "{not json", '{"method": "pa"}'])
def test_broken_model_descriptions_are_one_line(finished_run, fake_layers, wavs, tmp_path,
                                                content):
    workdir = _fake_train_workdir(tmp_path, fake_layers, finished_run)
    (workdir / "model" / "model.json").write_text(content)
    with pytest.raises(ConfigError) as info:
        predict_files(workdir, wavs, backend=fake_layers.backend())
    assert str(info.value).startswith(str(workdir / "model" / "model.json"))
    assert "\n" not in str(info.value)
    run_json = find_models(finished_run)[0][0] / "run.json"
    run_json.write_text(content)
    with pytest.raises(ConfigError) as info:
        predict_files(finished_run, wavs, backend=fake_layers.backend())
    assert str(info.value).startswith(str(run_json)) and "\n" not in str(info.value)


@pytest.fixture
def recipe_run(small_settings, tmp_path):
    """A finished fake run with pa and the variant `recommended` (it decides at 0.3)."""
    layers = FakeLayers()
    cfg = parse_config({**small_settings, "linear_baseline": False, "seeds": [0],
                        "methods": ["pa", {"name": "recommended", "method": "pa",
                                           "training": {"thresholds": "parity"}}]})
    run_experiment(cfg, out_dir=tmp_path / "recipe", progress=False,
                   console=Console(quiet=True), backend=layers.backend())
    return tmp_path / "recipe", layers


def test_a_manifest_feeds_gender_to_the_levers(recipe_run, wavs, tmp_path):
    run, layers = recipe_run
    csv = tmp_path / "files.csv"
    csv.write_text("path,speaker,gender\n" + "".join(
        f"{w.name},spk{i},{'female' if i else 'M'}\n" for i, w in enumerate(wavs)))
    table = read_predict_manifest(csv)
    assert list(table["gender"]) == ["M", "F"] and list(table["speaker"]) == ["spk0", "spk1"]
    df = predict_files(run, manifest=csv, backend=layers.backend())
    assert {m["method"] for m in df.attrs["models"]} == {"recommended"}  # the default
    assert df.attrs["notes"] == [] and df["error"].isna().all()
    for col in ("p_angry", "p_happy"):
        emotion = col[2:]
        decided = df["decision"].str.split(",").apply(lambda d, e=emotion: e in d)
        np.testing.assert_array_equal(decided, df[col] >= 0.3)
    # plain files: no gender, so the lever falls back, said once (two models warn alike)
    plain = predict_files(run, wavs, backend=layers.backend())
    assert plain.attrs["notes"] == ["predict: thresholds parity needs each row's gender; 2 "
                                    "row(s) without one get the plain rule"]
    pa = predict_files(run, wavs, method="pa", backend=layers.backend())
    assert pa.attrs["notes"] == []


@pytest.mark.parametrize(("text", "message"), [
    ("file,gender\nx.wav,M\n", r"files.csv: no 'path' column \(columns: file, gender\)"),
    ("path,gender\nx.wav,robot\n", r"files.csv: row 2: unknown gender 'robot'"),
    ("path,gender\nx.wav,M\n,F\n", r"files.csv: row 3: empty .path."),
])
def test_bad_manifests_are_one_line_errors(tmp_path, text, message):
    csv = tmp_path / "files.csv"
    csv.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_predict_manifest(csv)


def test_files_and_a_manifest_together_are_an_error(finished_run, fake_layers, wavs, tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        predict_files(finished_run, wavs, manifest=tmp_path / "x.csv",
                      backend=fake_layers.backend())


def test_models_trained_on_bf16_features_are_fed_bf16_features(finished_run, fake_layers,
                                                               wavs):
    for folder, _ in find_models(finished_run):
        info = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**info, "features_precision": "bf16"}))
    fake_layers.extract_runtime.clear()
    df = predict_files(finished_run, wavs, backend=fake_layers.backend())
    assert df["error"].isna().all()
    assert [r["precision"] for r in fake_layers.extract_runtime] == ["bf16"]


def test_features_of_two_precisions_cannot_be_mixed(finished_run, fake_layers, wavs):
    folders = [f for f, _ in find_models(finished_run)]
    info = json.loads((folders[0] / "run.json").read_text())
    (folders[0] / "run.json").write_text(json.dumps({**info, "features_precision": "bf16"}))
    with pytest.raises(ConfigError, match="different precisions"):
        predict_files(finished_run, wavs, backend=fake_layers.backend())


def test_precision_reaches_the_loaded_model(finished_run, fake_layers, wavs):
    import dataclasses

    seen = []
    backend = fake_layers.backend()

    def load(directory, **kw):
        seen.append(kw)
        return backend.load_model(directory, **{k: v for k, v in kw.items()
                                                if k != "precision"})

    df = predict_files(finished_run, wavs, precision="bf16",
                       backend=dataclasses.replace(backend, load_model=load))
    assert df["error"].isna().all() and seen and all(k["precision"] == "bf16" for k in seen)
