"""``fairser train CONFIG.yaml`` end to end on a small synthetic pair, and its errors."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from fairser.cli import app, main
from fairser.errors import ConfigError
from fairser.training.run import load_run_config

SMALL = {"utterances": 48, "speakers_per_gender": 3}


def _write(path, data) -> None:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.mark.slow
def test_train_command_runs_saves_and_resumes(tmp_path) -> None:
    pytest.importorskip("fairser.corpora.synthetic")
    cfg = {
        "source": "synthetic-source:synth",
        "target": "synthetic-target:synth",
        "source_options": SMALL,
        "target_options": SMALL,
        "frontend": "logmel",
        "method": "pa-adv",
        "emotion": "angry",
        "cache_dir": "cache",
        "training": {
            "model": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "embed_dim": 16},
            "stage1_epochs": 2,
            "stage2_epochs": 2,
            "batch_size": 16,
            "num_threads": 1,
        },
    }
    path = tmp_path / "run.yaml"
    _write(path, cfg)
    result = CliRunner().invoke(app, ["train", str(path), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["workdir"] == str(tmp_path / "run.run")
    assert (tmp_path / "run.run" / "model" / "model.safetensors").is_file()
    assert 0.0 <= summary["target"]["uar"] <= 1.0
    assert 0.0 <= summary["target"]["gender_head_acc"] <= 1.0
    assert summary["target"]["rows"] == 48
    again = CliRunner().invoke(app, ["train", str(path), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "model saved in" in again.output


def test_run_config_errors_are_one_line(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    _write(path, {"source": "ravdess:x", "trainig": {}})
    with pytest.raises(
        ConfigError, match=r"bad.yaml:\d+: trainig: unknown key; did you mean 'training'"
    ):
        load_run_config(path)
    _write(path, {"source": "ravdess:x", "training": {"alpha": -1}})
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: training.alpha: "):
        load_run_config(path)
    _write(path, {"source": "no-colon"})
    with pytest.raises(ConfigError, match="expected KIND:ROOT"):
        load_run_config(path)
    path.write_text("source: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_run_config(path)
    ok = tmp_path / "ok.yaml"
    _write(ok, {"source": "ravdess:data/r", "target": "casia:/abs/c"})
    cfg = load_run_config(ok)
    assert cfg.source == f"ravdess:{tmp_path / 'data' / 'r'}"
    assert cfg.target == "casia:/abs/c" and cfg.workdir == str(tmp_path / "ok.run")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0


def test_run_config_names_checked_before_any_work(tmp_path, capsys) -> None:
    """Method, emotion and target errors come from the config, not after feature extraction."""
    path = tmp_path / "bad.yaml"
    base = {"source": "ravdess:missing", "target": "casia:missing"}
    _write(path, {**base, "method": "pa-xyz"})
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'method': unknown method 'pa-xyz'"):
        load_run_config(path)
    _write(path, {**base, "emotion": "angri"})
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'emotion': unknown emotion"):
        load_run_config(path)
    _write(path, {**base, "emotion": ["angry", "hapy"]})
    with pytest.raises(ConfigError, match=r"\['hapy'\]"):
        load_run_config(path)
    _write(path, {"source": "ravdess:missing", "method": "pa-cfa"})
    with pytest.raises(ConfigError, match=r"bad.yaml: method 'pa-cfa' needs a target corpus"):
        load_run_config(path)
    _write(path, {"source": "ravdess:missing", "method": "source-only", "emotion": None})
    assert load_run_config(path).target is None
    # The CLI reports the config error (one line, exit 2), not the missing corpus folder.
    _write(path, {**base, "method": "pa-xyz"})
    with pytest.raises(SystemExit) as info:
        main(["train", str(path), "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "unknown method 'pa-xyz'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_non_utf8_run_config_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"source: ravdess:/r\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"run.yaml: not a UTF-8 text file \(byte \d+\)"):
        load_run_config(path)


def test_grid_config_points_to_fairser_run(tmp_path) -> None:
    path = tmp_path / "grid.yaml"
    _write(path, {"name": "g", "source": "ravdess:/r", "targets": ["casia:/c"], "methods": ["pa"]})
    with pytest.raises(
        ConfigError,
        match=r"grid.yaml: this is an experiment grid config .*"
        r"`fairser run .*grid.yaml`$",
    ):
        load_run_config(path)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "gpu"], "device 'gpu' is not one of auto | cpu | cuda | cuda:N | mps"),
        (["--precision", "fp8"], "--precision 'fp8' is not one of fp32 | bf16 | fp16"),
        (["--device", "cuda:7"], "device 'cuda:7'"),
    ],
)
def test_device_and_precision_flags_are_checked_in_one_line(
    tmp_path, capsys, flags, message
) -> None:
    import torch

    if flags[1] == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    path = tmp_path / "run.yaml"
    _write(path, {"source": "ravdess:missing", "method": "source-only"})
    with pytest.raises(SystemExit) as info:
        main(["train", str(path), "--no-progress", *flags])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_train_warns_once_about_position_encodings_without_layers(tmp_path) -> None:
    """``n_layers: 0`` with positions on (the default): one yellow line naming the fix, before
    anything else happens (here the missing corpus, which still ends the command as usual)."""
    path = tmp_path / "run.yaml"
    cfg = {"source": f"ravdess:{tmp_path / 'no-such-corpus'}", "method": "source-only",
           "emotion": "angry", "training": {"model": {"n_layers": 0}}}
    _write(path, cfg)
    result = CliRunner().invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code != 0
    lines = [x for x in result.output.splitlines() if x.startswith("warning: ")]
    assert len(lines) == 1 and "model: {positional: false}" in lines[0], result.output
    assert "run.yaml: training" in lines[0]
    _write(path, {**cfg, "training": {"model": {"n_layers": 0, "positional": False}}})
    quiet = CliRunner().invoke(app, ["train", str(path), "--no-progress"])
    assert "warning: " not in quiet.output
