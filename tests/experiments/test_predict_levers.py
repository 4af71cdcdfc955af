"""predict with a real tiny model trained with the recipe's levers (fake corpora and features).

The model is trained by ``fairser.training.fit`` inside a grid (fake corpora, 6-dimensional fake
features), saved, loaded back by ``FittedModel.load`` and used by ``predict_files``: a manifest's
``speaker`` and ``gender`` reach the levers, and plain files make each lever fall back with one
note per lever.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
from grid_fakes import FakeLayers, recipe_grid_config
from rich.console import Console

from fairser.experiments import RECOMMENDED, predict_files, run_experiment


def _real_training(layers: FakeLayers):
    from fairser.experiments.backend import train_config
    from fairser.training import FittedModel, TrainConfig, fit

    if "thresholds" not in TrainConfig.model_fields:
        pytest.skip("needs the lever options of fairser.training (input_norm per-speaker, "
                    "thresholds)")
    return dataclasses.replace(layers.backend(), fit=fit, train_config=train_config,
                               load_model=FittedModel.load)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    layers = FakeLayers()
    backend = _real_training(layers)
    root = tmp_path_factory.mktemp("levers")
    cfg = recipe_grid_config("levers", methods=[RECOMMENDED], probe={"enabled": False})
    result = run_experiment(cfg, out_dir=root / "run", progress=False,
                            console=Console(quiet=True), backend=backend)
    assert not result.failed, result.failed
    wavs = []
    for i in range(4):
        path = root / f"clip{i}.wav"
        sf.write(path, np.random.default_rng(i).normal(0, 0.1, 4000).astype(np.float32), 16000)
        wavs.append(path)
    return root / "run", wavs, backend


def test_plain_files_fall_back_with_one_note_per_lever(recipe_run):
    run, wavs, backend = recipe_run
    df = predict_files(run, wavs, backend=backend)
    assert df["error"].isna().all() and df["decision"].notna().all()
    notes = df.attrs["notes"]
    assert notes and len(notes) == len(set(notes)) and all("\n" not in n for n in notes)
    text = " ".join(notes)
    assert "gender" in text  # the thresholds lever names what it missed


def test_a_manifest_with_speaker_and_gender_silences_the_gender_lever(recipe_run, tmp_path):
    run, wavs, backend = recipe_run
    csv = tmp_path / "files.csv"
    csv.write_text("path,speaker,gender\n" + "".join(
        f"{w},spk{i % 2},{'MF'[i % 2]}\n" for i, w in enumerate(wavs)))
    df = predict_files(run, manifest=csv, backend=backend)
    assert df["error"].isna().all()
    assert not any("gender" in n for n in df.attrs["notes"]), df.attrs["notes"]


def test_lever_warnings_of_a_grid_go_to_the_record(recipe_run):
    import json

    run, _, _ = recipe_run
    records = [json.loads(p.read_text()) for p in (run / "records").glob("recommended*.json")]
    assert records and all(r["status"] == "ok" for r in records)
    assert any("input_norm per-speaker" in n for r in records for n in r.get("notes", []))


def test_device_reaches_extraction_and_the_loaded_model(recipe_run):
    import dataclasses

    run, wavs, backend = recipe_run
    seen: dict[str, object] = {}

    def extract(manifest, frontend, **kw):
        seen["extract"] = kw.get("device")
        kw.pop("device", None)
        return backend.extract(manifest, frontend, **kw)

    def load_model(directory, **kw):
        seen["load"] = kw.get("device")
        return backend.load_model(directory, **kw)

    wired = dataclasses.replace(backend, extract=extract, load_model=load_model)
    plain = predict_files(run, wavs, backend=backend)
    on_cpu = predict_files(run, wavs, backend=wired, device="cpu")
    assert seen == {"extract": "cpu", "load": "cpu"}
    cols = [c for c in plain.columns if c.startswith("p_")]
    assert np.array_equal(plain[cols].to_numpy(), on_cpu[cols].to_numpy())


def test_each_fit_records_where_it_ran_and_meta_counts_the_devices(recipe_run):
    import json

    run, _, _ = recipe_run
    records = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    trained = [r for r in records if "spec" in r]  # the recipe fit(s); no linear baseline
    assert trained and all(r["runtime"]["device"] == "cpu" for r in trained)
    assert all(r["runtime"]["precision"] == "fp32" and r["runtime"]["host"] for r in trained)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["devices"] == {"cpu fp32": len(trained)}


def test_rows_without_a_speaker_use_the_named_corpus_statistics(recipe_run, tmp_path):
    # the fitted per-speaker lever keeps each training corpus's statistics for rows without a
    # speaker; predict rows reach them only when their corpus is named (column or argument)
    run, wavs, backend = recipe_run
    plain = predict_files(run, wavs, backend=backend)
    named = predict_files(run, wavs, corpus="tgt", backend=backend)
    csv = tmp_path / "files.csv"
    csv.write_text("path,corpus\n" + "".join(f"{w},tgt\n" for w in wavs))
    column = predict_files(run, manifest=csv, backend=backend)

    def norm_note(df):
        return next(n for n in df.attrs["notes"] if "input_norm per-speaker" in n)

    assert "0 with corpus and 4 with global statistics" in norm_note(plain)
    assert "4 with corpus and 0 with global statistics" in norm_note(named)
    assert norm_note(column) == norm_note(named)
    assert "name it: a `corpus` column or --corpus" in norm_note(plain)
    probs = [c for c in plain.columns if c.startswith("p_")]
    assert np.allclose(column[probs], named[probs])
    assert not np.allclose(plain[probs], named[probs])  # other statistics, other scores
