"""`fairser predict` with a manifest and with plain files: lever fallbacks are one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

from grid_fakes import EMOTIONS, FakeLayers  # noqa: E402

from fairser.cli import main  # noqa: E402
from fairser.experiments import parse_config, run_experiment  # noqa: E402


@pytest.fixture
def recipe_run(tmp_path, monkeypatch):
    layers = FakeLayers()
    cfg = parse_config({
        "name": "fake", "source": "fake-source:/x", "targets": ["fake-target:/y"],
        "emotions": list(EMOTIONS), "run_emotions": ["angry", "sad"], "seeds": [0],
        "bootstrap": {"n_resamples": 0}, "linear_baseline": False,
        "methods": ["pa", {"name": "recommended", "method": "pa",
                           "training": {"thresholds": "parity"}}]})
    run_experiment(cfg, out_dir=tmp_path / "run", progress=False, console=Console(quiet=True),
                   backend=layers.backend())
    monkeypatch.setattr("fairser.experiments.predict.default_backend", layers.backend)
    wavs = []
    for i in range(3):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, np.random.default_rng(i).normal(0, 0.1, 8000).astype(np.float32), 16000)
        wavs.append(path)
    return tmp_path / "run", wavs


def _cli(args, capsys):
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plain_files_print_one_warning_line_per_lever(recipe_run, capsys):
    run, wavs = recipe_run
    code, out, err = _cli(["predict", "--run", run, "--json", *wavs], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("warning: predict: thresholds parity needs each row's gender")
    assert "plain rule" in lines[0]
    payload = json.loads(out)
    assert payload["notes"] and {m["method"] for m in payload["models"]} == {"recommended"}
    assert all("decision" in p for p in payload["predictions"])


def test_a_manifest_with_gender_prints_no_warning(recipe_run, tmp_path, capsys):
    run, wavs = recipe_run
    csv = tmp_path / "files.csv"
    csv.write_text("path,speaker,gender\n" + "".join(f"{w},s{i},F\n" for i, w in enumerate(wavs)))
    code, out, err = _cli(["predict", "--run", run, "--manifest", csv], capsys)
    assert code == 0 and "warning" not in err
    assert "decision" in out and "clip2.wav" in " ".join(out.split())


def test_a_bad_manifest_is_one_red_line_exit_2(recipe_run, tmp_path, capsys):
    run, _ = recipe_run
    csv = tmp_path / "files.csv"
    csv.write_text("file\nx.wav\n")
    code, _, err = _cli(["predict", "--run", run, "--manifest", csv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no 'path' column" in err


def test_an_unknown_device_is_one_line_exit_2(recipe_run, capsys):
    run, wavs = recipe_run
    code, out, err = _cli(["predict", "--run", run, "--device", "gpu0", *wavs], capsys)
    assert code == 2 and "Traceback" not in err
    assert "device 'gpu0' is not one of" in " ".join(err.split())
