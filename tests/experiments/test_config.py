"""Experiment config: YAML loading, strictness, path resolution, grid helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairser.errors import ConfigError
from fairser.experiments import ExperimentConfig, load_config, parse_config, plan_fits

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_documented_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, "source: ravdess:data/rav\ntargets: casia:/abs/casia\n"))
    assert cfg.source.spec == f"ravdess:{(tmp_path / 'data/rav').resolve()}"
    assert cfg.targets[0].spec == "casia:/abs/casia"
    assert cfg.methods == ["source-only", "pa", "pa-rew", "pa-fairw", "pa-adv", "pa-cfa"]
    assert cfg.seeds == [0, 1, 2] and cfg.task == "binary"
    assert cfg.target_split.mode == "transductive"
    assert [c.label for c in cfg.source_subsample] == ["all"]
    for name, field in ExperimentConfig.model_fields.items():
        assert field.description, f"option {name} has no description"


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = _write(tmp_path, "source: ravdess:/r\ntargets: [casia:/c]\nfeatures:\n"
                            "  frontend: logmel\n  layer: 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert f"{path}:5" in msg and "features.layer" in msg and "unknown key" in msg
    assert "\n" not in msg


def test_missing_required_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="targets: required key is missing"):
        load_config(_write(tmp_path, "source: ravdess:/r\n"))
    with pytest.raises(ConfigError, match="unknown emotion"):
        load_config(_write(tmp_path, "source: a:/r\ntargets: b:/c\nemotions: [anger, sad]\n"))
    with pytest.raises(ConfigError, match="keep"):
        load_config(_write(tmp_path, "source: a:/r\ntargets: b:/c\n"
                                     "source_subsample: {keep: 1.5}\n"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(tmp_path, "source: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="distinct `name`"):
        parse_config({"source": "a:/r", "targets": ["casia:/c", "casia:/d"]})


def test_environment_variables_expand_or_fail(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRSER_TEST_ROOT", str(tmp_path / "msp"))
    cfg = parse_config({"source": "msp-podcast:${FAIRSER_TEST_ROOT}", "targets": ["b:/c"]})
    assert cfg.source.root == str((tmp_path / "msp").resolve())
    monkeypatch.delenv("FAIRSER_TEST_ROOT")
    with pytest.raises(ConfigError, match=r"\$FAIRSER_TEST_ROOT is not set"):
        parse_config({"source": "msp-podcast:$FAIRSER_TEST_ROOT", "targets": ["b:/c"]})


def test_sweep_points_and_plan_size():
    cfg = parse_config({"source": "a:/r", "targets": ["b:/c"], "seeds": [0, 1],
                        "methods": ["source-only", "pa-adv", "pa-cfa"],
                        "sweep": {"params": {"alpha": [0.1, 1.0], "beta": [0.5, 1.0, 2.0]},
                                  "methods": ["pa-cfa"]},
                        "source_subsample": [{"keep": 1.0}, {"gender": "F", "keep": 0.3}]})
    assert cfg.sweep_points("pa-adv") == [{}]
    assert len(cfg.sweep_points("pa-cfa")) == 6
    assert {"alpha": 1.0, "beta": 2.0} in cfg.sweep_points("pa-cfa")
    plan = plan_fits(cfg, baselines=False)
    # 2 conditions x 1 target x 2 seeds x 4 emotions x (1 + 1 + 6) method points
    assert len(plan) == 2 * 2 * 4 * 8
    assert len({p.key for p in plan}) == len(plan)
    assert {p.condition for p in plan} == {"all", "F30"}


def test_run_emotions_and_multiclass_grid():
    cfg = parse_config({"source": "a:/r", "targets": ["b:/c"], "run_emotions": ["angry"]})
    assert cfg.grid_emotions() == ["angry"]
    with pytest.raises(ConfigError, match="subset"):
        parse_config({"source": "a:/r", "targets": ["b:/c"], "run_emotions": ["fear"]})
    multi = parse_config({"source": "a:/r", "targets": ["b:/c"], "task": "multiclass"})
    assert multi.grid_emotions() == ["all"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_validate(path, monkeypatch):
    for var in ("MSP_PODCAST_ROOT", "BIIC_PODCAST_ROOT"):
        monkeypatch.setenv(var, "/data/placeholder")
    cfg = load_config(path)
    assert "source-only" in cfg.methods
    assert all(t.root for t in cfg.targets) and cfg.source.root
    from fairser.experiments import check_config, default_backend

    check_config(cfg, default_backend())  # methods and training options known downstream


def test_non_utf8_config_is_a_config_error(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"\xff\xfesource: ravdess:/r\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: not a UTF-8 text file \(byte 0\)"):
        load_config(path)


def test_single_run_config_points_to_fairser_train(tmp_path):
    path = _write(tmp_path, "source: ravdess:/r\ntarget: casia:/c\nmethod: pa\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: this is a single-run config .*fairser train"):
        load_config(path)


@pytest.mark.parametrize(("line", "fragment"), [
    ("seeds: [-1]", "seeds.0: Input should be greater than or equal to 0 (got -1)"),
    ("seeds: [18446744073709551616]", "seeds.0: Input should be less than or equal to "
                                      "4294967295"),
    ("seeds: [yes]", "seeds.0: Input should be a valid integer (got True)"),
    ("seeds: [1.5]", "seeds.0: Input should be a valid integer"),
    ("source_subsample: {keep: .nan}", "source_subsample.0.keep: Input should be a finite"),
    ("source_subsample: {gender: X, keep: 0.5}", "source_subsample.0.gender: Input should be "
                                                 "'M' or 'F'"),
    ("bootstrap: {seed: -3}", "bootstrap.seed: Input should be greater than or equal to 0"),
    ("bootstrap: {confidence: 1.0}", "bootstrap.confidence: Input should be less than 1"),
    ("seedz: [1]", "seedz: unknown key; did you mean 'seeds'?"),
])
def test_value_ranges_are_config_errors_with_line(tmp_path, line, fragment):
    path = _write(tmp_path, f"source: ravdess:/r\ntargets: [casia:/c]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:3: ") and fragment in msg, msg


def test_target_equal_to_source_is_named(tmp_path):
    path = _write(tmp_path, "source: ravdess:data\ntargets:\n  - casia:c\n  - ravdess:./data\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:4: targets.1: the target is the source corpus")


def test_duplicate_key_is_an_error_not_a_silent_override(tmp_path):
    path = _write(tmp_path, "source: ravdess:/r\ntargets: [casia:/c]\nseeds: [0]\nseeds: [1]\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:4: key 'seeds' is written twice"):
        load_config(path)


def test_names_that_would_break_file_names_or_columns_are_config_errors():
    base = {"source": "ravdess:/r", "targets": ["casia:/c"]}
    with pytest.raises(ConfigError, match="name: String should have at most 100 characters"):
        parse_config({**base, "name": "x" * 101})
    with pytest.raises(ConfigError, match="targets.0: the target is labelled 'ravdess' like the"):
        parse_config({**base, "targets": [{"spec": "casia:/c", "name": "ravdess"}]})
    from grid_fakes import FakeLayers

    from fairser.experiments import check_config

    long = parse_config({**base, "targets": [{"spec": "casia:/c", "name": "t" * 180}],
                         "methods": ["pa"]})
    with pytest.raises(ConfigError, match="too long for a file name"):
        check_config(long, FakeLayers().backend())


def test_feature_extraction_options_have_defaults_and_reject_bad_values(tmp_path):
    cfg = load_config(_write(tmp_path, "source: ravdess:/r\ntargets: [casia:/c]\n"))
    assert (cfg.features.device, cfg.features.precision, cfg.features.batch_seconds) == (
        "auto", "fp32", None)
    cfg = load_config(_write(tmp_path, "source: ravdess:/r\ntargets: [casia:/c]\nfeatures:\n"
                                       "  device: cuda:1\n  precision: bf16\n"
                                       "  batch_seconds: 120\n"))
    assert (cfg.features.device, cfg.features.precision, cfg.features.batch_seconds) == (
        "cuda:1", "bf16", 120.0)
    for line, fragment in [("device: gpu", "features.device: device 'gpu' is not one of "
                                           "auto | cpu | cuda | cuda:N | mps"),
                           ("precision: fp8", "features.precision: precision 'fp8' is not "
                                              "one of fp32 | bf16 | fp16"),
                           ("batch_seconds: 0", "features.batch_seconds: Input should be "
                                                "greater than 0"),
                           ("batch_seconds: .nan", "features.batch_seconds")]:
        path = _write(tmp_path, f"source: ravdess:/r\ntargets: [casia:/c]\nfeatures:\n"
                                f"  {line}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        msg = str(info.value)
        assert msg.startswith(f"{path}:4: {fragment}"), msg
        assert "\n" not in msg
