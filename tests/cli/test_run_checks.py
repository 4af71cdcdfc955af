"""`fairser run --dry-run` checks what the run checks; faults end in one line and an exit code.

Tiny RAVDESS- and CASIA-like folders are generated here (a few 0.3 s tones each).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fairser.cli import main

CASIA_SPEAKERS = ("wangzhe", "ZhaoZuoxiang", "liuchanhg", "zhaoquanyin")


def _tone(path: Path, seed: int, seconds: float = 0.3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(seed).standard_normal(t.size)
    sf.write(path, (0.1 * np.sin(2 * np.pi * 200 * t) + 0.01 * noise).astype(np.float32), 16000)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    """``ravdess/`` (6 actors, 4 emotions, 2 statements) and ``casia/`` (4 speakers x 4 x 3)."""
    root = tmp_path_factory.mktemp("corpora")
    seed = 0
    for actor in range(1, 7):
        for emo in (1, 3, 4, 5):  # neutral, happy, sad, angry
            for st in (1, 2):
                seed += 1
                _tone(root / "ravdess" / f"Actor_{actor:02d}" /
                      f"03-01-{emo:02d}-01-{st:02d}-01-{actor:02d}.wav", seed)
    for spk in CASIA_SPEAKERS:
        for emo in ("angry", "happy", "sad", "neutral"):
            for text in (201, 202, 203):
                seed += 1
                _tone(root / "casia" / spk / emo / f"{text}.wav", seed)
    return root


def _cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def _config(folder: Path, corpora: Path, extra: str = "", *, source="ravdess", target="casia"
            ) -> Path:
    path = folder / "grid.yaml"
    path.write_text(f"source: {source}:{corpora / source}\ntargets: [{target}:{corpora / target}]\n"
                    "emotions: [angry, happy, sad, neutral]\nrun_emotions: [angry]\n"
                    "features: {frontend: logmel}\nmethods: [source-only, pa]\nseeds: [0]\n"
                    + extra)
    return path


def test_dry_run_prints_fits_store_and_memory(corpora, tmp_path, capsys):
    code, _, err = _cli(["run", _config(tmp_path, corpora), "--dry-run"], capsys)
    assert code in (0, None), err
    assert "valid; 2 runs" in err and "+ 1 linear baselines = 3 fits" in err
    assert "data: ravdess 48 rows" in err and "casia 48 rows" in err
    assert "feature store (logmel: 100 frames/s x 80 dims x 1 layer(s) x float16)" in err
    assert "peak memory per fit: about" in err


@pytest.mark.parametrize(("extra", "fragment"), [
    ("training: {lr: -1}\n", "training: "),
    ("training: {epochz: 3}\n", "unknown key"),
    ("source_subsample: {gender: F, keep: 0.5, seed: -2}\n", ":8: source_subsample.0.seed: "),
    ("target_split: {mode: speakers, eval_speakers_per_gender: 2}\n",
     "holding out 2 leaves none to adapt on"),
    ("source_split: {mode: groups, group_column: text_id}\n", "no column 'text_id'"),
])
def test_dry_run_fails_where_the_run_would(corpora, tmp_path, capsys, extra, fragment):
    code, _, err = _cli(["run", _config(tmp_path, corpora, extra), "--dry-run"], capsys)
    assert code == 2, err
    assert fragment in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(("seeds", "fragment"), [
    ("[-1]", "seeds.0: Input should be greater than or equal to 0 (got -1)"),
    ("[18446744073709551616]", "seeds.0: Input should be less than or equal to 4294967295"),
])
def test_out_of_range_seeds_fail_dry_run_with_their_line(corpora, tmp_path, capsys, seeds,
                                                        fragment):
    path = _config(tmp_path, corpora)
    path.write_text(path.read_text().replace("seeds: [0]", f"seeds: {seeds}"))
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code == 2 and f"{path}:7: {fragment}" in err, err


def test_dry_run_checks_frontend_layers_paths_and_executor(corpora, tmp_path, capsys,
                                                          monkeypatch):
    path = _config(tmp_path, corpora)
    text = path.read_text()
    path.write_text(text.replace("{frontend: logmel}", "{frontend: whisper-base, layers: [9]}"))
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code == 2 and "features.layers: frontend whisper-base: layer 9 is out of range" in err
    path.write_text(text)
    taken = tmp_path / "taken"
    taken.write_text("a file")
    code, _, err = _cli(["run", path, "--dry-run", "--out", taken], capsys)
    assert code == 2 and "--out: " in err and "is a file, not a folder" in err
    code, _, err = _cli(["run", path, "--dry-run", "--executor", "threads:2"], capsys)
    assert code == 2 and "unknown executor; use one of local, processes:N" in err
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = _cli(["run", path, "--dry-run", "--executor", "ray"], capsys)
    assert code == 2 and "--executor ray needs Ray, an optional extra: pip install" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_ray_error_keeps_the_extra_name(corpora, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = _cli(["run", _config(tmp_path, corpora), "--dry-run", "--executor", "ray"],
                        capsys)
    assert code == 2 and "pip install 'fairser[ray]'" in err


def test_target_equal_to_source_is_one_line(corpora, tmp_path, capsys):
    path = _config(tmp_path, corpora, target="ravdess")
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code == 2 and "targets.0: the target is the source corpus" in err, err
    # the same corpus under another root (a copy): caught by the corpus name
    import shutil

    shutil.copytree(corpora / "ravdess", tmp_path / "copy" / "ravdess")
    path.write_text(path.read_text().replace(f"[ravdess:{corpora / 'ravdess'}]",
                                             f"[ravdess:{tmp_path / 'copy' / 'ravdess'}]"))
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code == 2 and "targets.0: the target is labelled 'ravdess' like the source" in err
    assert "duplicate" not in err.lower() and len(err.strip().splitlines()) == 1
    # ... and under another name: caught by the corpus name in the manifests
    path.write_text(path.read_text().replace(f"[ravdess:{tmp_path / 'copy' / 'ravdess'}]",
                                             f"[{{spec: 'ravdess:{tmp_path / 'copy' / 'ravdess'}'"
                                             ", name: copy}]"))
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code == 2 and "its corpus name 'ravdess' is also that of source (ravdess:" in err, err
    assert len(err.strip().splitlines()) == 1


def test_second_run_on_a_locked_folder_exits_2(corpora, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from fairser.experiments.store import RunLock\n"
         f"with RunLock({str(out)!r}, command='fairser run first.yaml'):\n"
         "    print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = _cli(["run", _config(tmp_path, corpora), "--out", out, "--no-progress"],
                            capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert code == 2, err
    assert "another run is writing to this folder" in err and "fairser run first.yaml" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_failed_fits_are_listed_and_exit_1(tmp_path, capsys, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    try:
        from grid_fakes import FakeLayers
    finally:
        sys.path.pop(0)
    layers = FakeLayers(diverge={("pa", 0)})
    monkeypatch.setattr("fairser.experiments.runner.default_backend", lambda: layers.backend())
    path = tmp_path / "fake.yaml"
    path.write_text("source: fake-source:/x\ntargets: [fake-target:/y]\nrun_emotions: [angry]\n"
                    "methods: [source-only, pa]\nseeds: [0]\nbootstrap: {n_resamples: 0}\n")
    code, _, err = _cli(["run", path, "--out", tmp_path / "run", "--no-progress"], capsys)
    assert code == 1, err
    assert "failed: pa__angry__seed0__fake-target__all: " in err
    assert "not finite (training diverged)" in err and "1 of 3 fits failed" in err
    assert "Traceback" not in err
    results = (tmp_path / "run" / "results.csv").read_text()
    assert "failed" in results and "ok" in results


def test_predict_on_a_model_json_of_braces_is_one_line(tmp_path, capsys):
    folder = tmp_path / "run" / "models" / "pa__angry__x"
    (folder / "model").mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "method": "pa", "emotion": "angry", "seed": 0, "emotions": ["angry", "happy"],
        "frontend": "logmel", "layers": None}))
    # a readable weights file and history, but model.json is `{}`
    import torch

    from fairser.training.checkpoint import save_tensors

    save_tensors(folder / "model" / "model.safetensors", {"w": torch.zeros(1)}, {})
    (folder / "model" / "history.json").write_text("{}")
    (folder / "model" / "model.json").write_text("{}")
    wav = tmp_path / "a.wav"
    _tone(wav, 1)
    code, _, err = _cli(["predict", "--run", tmp_path / "run", wav], capsys)
    assert code == 2, err
    # training's FittedModel.load names the folder and the missing keys (one FairserError line)
    assert f"{folder / 'model'}:" in err and "KeyError" in err and "incomplete" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    (folder / "run.json").write_text("{}")
    code, _, err = _cli(["predict", "--run", tmp_path / "run", wav], capsys)
    assert code == 2 and f"{folder / 'run.json'}: no 'method'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_real_grid_diverged_fits_fail_and_predict_reads_run_and_train(corpora, tmp_path, capsys):
    """Real layers on the tone corpora: lr 1e300 fails its fits (exit 1), a sane grid with the
    largest seed runs, predict scores good files of it and of `fairser train`, lists bad ones."""
    tiny = ("training: {stage1_epochs: 2, stage2_epochs: 1, batch_size: 8, num_threads: 1, "
            "LR model: {d_model: 16, n_heads: 2, ff_dim: 32, embed_dim: 16, gc_hidden: 8}}\n"
            f"bootstrap: {{n_resamples: 0}}\nfeatures: {{frontend: logmel, cache_dir: "
            f"{tmp_path / 'cache'}}}\n")
    path = _config(tmp_path, corpora)
    base = path.read_text().replace("features: {frontend: logmel}\n", "")
    path.write_text(base + tiny.replace("LR", "lr: 1.0e+300,"))
    code, _, err = _cli(["run", path, "--out", tmp_path / "bad", "--no-progress"], capsys)
    assert code == 1, err
    listed = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert len(listed) == 2 and "2 of 3 fits failed" in err and "Traceback" not in err
    rows = (tmp_path / "bad" / "results.csv").read_text().splitlines()
    assert sum(",failed," in r for r in rows) == 4  # 2 fits x 2 evaluated corpora

    path.write_text(base.replace("seeds: [0]", "seeds: [4294967295]") + tiny.replace("LR", ""))
    code, _, err = _cli(["run", path, "--out", tmp_path / "good", "--no-progress"], capsys)
    assert code in (0, None), err
    wav = next((corpora / "casia" / "wangzhe" / "angry").glob("*.wav"))
    code, out, err = _cli(["predict", "--run", tmp_path / "good", "--json", wav,
                           tmp_path / "missing.wav"], capsys)
    assert code == 1 and "missing.wav: audio file not found" in err
    preds = json.loads(out)["predictions"]
    assert preds[0]["error"] is None and 0 <= preds[0]["probabilities"]["angry"] <= 1
    assert preds[1]["error"] and preds[1]["probabilities"]["angry"] is None

    train = tmp_path / "train.yaml"
    train.write_text(f"source: ravdess:{corpora / 'ravdess'}\ntarget: casia:{corpora / 'casia'}\n"
                     f"frontend: logmel\nmethod: pa-adv\nemotion: angry\ncache_dir: "
                     f"{tmp_path / 'cache'}\ntraining: {{stage1_epochs: 2, stage2_epochs: 1, "
                     "batch_size: 8, num_threads: 1, model: {d_model: 16, n_heads: 2, "
                     "ff_dim: 32, embed_dim: 16, gc_hidden: 8}}\n")
    code, _, err = _cli(["train", train, "--no-progress"], capsys)
    assert code in (0, None), err
    code, out, err = _cli(["predict", "--run", tmp_path / "train.run", "--json", wav], capsys)
    assert code in (0, None), err
    payload = json.loads(out)
    assert payload["models"][0]["method"] == "pa-adv"
    assert 0 <= payload["predictions"][0]["probabilities"]["angry"] <= 1


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("targets: [casia:", "targets: [cassia:", "unknown corpus kind 'cassia'"),
    ("/casia]", "/nowhere]", "targets.0: casia:"),
    ("source: ravdess:", "source: ravdess:/nowhere", "source: ravdess:/nowhere"),
    ("{frontend: logmel}", "{frontend: whisper-huge}",
     "features.frontend: unknown frontend 'whisper-huge'"),
    ("methods: [source-only, pa]", "methods: [pa-xyz]", "methods: unknown method(s) ['pa-xyz']"),
])
def test_dry_run_names_kind_root_frontend_and_method(corpora, tmp_path, capsys, old, new,
                                                     fragment):
    path = _config(tmp_path, corpora)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code == 2, err
    assert err.startswith(f"error: {path}: ") and fragment in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_dry_run_warns_once_about_positions_without_layers(corpora, tmp_path, capsys):
    path = _config(tmp_path, corpora)
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code in (0, None) and "warning" not in err, err
    path.write_text(path.read_text().replace(
        "methods: [source-only, pa]",
        "methods: [source-only, {name: flat, method: pa, training: {model: {n_layers: 0}}},\n"
        "  {name: flat-np, method: pa, training: {model: {n_layers: 0, positional: false}}}]"))
    code, _, err = _cli(["run", path, "--dry-run"], capsys)
    assert code in (0, None), err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("warning: methods 'flat': model n_layers: 0 with positional")
    assert "model: {positional: false}" in lines[0] and "flat-np" not in lines[0]
    assert "valid; 3 runs" in err and "Traceback" not in err
