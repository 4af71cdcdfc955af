"""`fairser run`, `fairser demo`, `fairser predict` through the real entry point."""

from __future__ import annotations

import resource

import pytest

from fairser.cli import main


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (user + system)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_run_with_invalid_config_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("source: ravdess:/r\ntargets: [casia:/c]\nseedz: [1]\n")
    code, _, err = _cli(["run", str(path)], capsys)
    assert code == 2
    assert f"{path}:3: seedz: unknown key" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_predict_without_models_is_one_line_exit_2(tmp_path, capsys):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    code, _, err = _cli(["predict", "--run", str(tmp_path), str(audio)], capsys)
    assert code == 2 and "no saved models" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_demo_end_to_end_then_predict_and_resume(tmp_path, capsys):
    """`fairser demo` on the synthetic pair (the CI run of `make demo`), then predict on it."""
    import json
    import time

    import pandas as pd

    out = tmp_path / "demo"
    start, cpu = time.perf_counter(), _cpu_seconds()
    code, stdout, err = _cli(["demo", "--out", str(out), "--no-progress"], capsys)
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    assert code in (0, None), err
    # The budget is 5 minutes on 2 cores. Counted in CPU seconds (this process and its worker
    # processes), so other work on a shared machine does not make the test fail.
    assert cpu < 600, f"demo used {cpu:.0f} CPU s ({elapsed:.0f} s wall); the budget is 600"
    assert stdout.strip().splitlines()[-1] == f"Report: {(out / 'report.html').resolve()}"
    results = pd.read_csv(out / "results.csv")
    assert set(results["method"]) == {"linear-baseline", "source-only", "pa", "pa-rew",
                                      "pa-fairw", "pa-adv", "pa-cfa", "recommended"}
    assert set(results["emotion"]) == {"angry", "happy"}
    # (methods + recipe + floor) x emotions x {source, target}
    assert len(results) == (6 + 1 + 1) * 2 * 2
    target = results[results["role"] == "target"].set_index(["method", "emotion"])
    assert target["uar"].between(0, 1).all() and target["dsp"].between(0, 1).all()
    # the synthetic emotions are learnable: every trained model beats chance on the target
    trained = target.index.get_level_values("method") != "linear-baseline"
    assert (target.loc[trained, "uar"] > 0.55).all()
    # the adversarial methods carry a gender head, source-only does not
    assert target.loc["pa-adv", "gc_acc"].notna().all()
    assert target.loc["source-only", "gc_acc"].isna().all()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and (out / "table.md").read_text().count("|") > 50

    from fairser.corpora import load_corpus

    wavs = load_corpus("synthetic-target:")["path"].iloc[:2].tolist()
    code, stdout, err = _cli(["predict", "--run", str(out), "--json", *wavs], capsys)
    assert code in (0, None), err
    payload = json.loads(stdout)
    assert [p["file"] for p in payload["predictions"]] == wavs
    for pred in payload["predictions"]:
        assert set(pred["probabilities"]) == {"angry", "happy"}
        assert all(0.0 <= v <= 1.0 for v in pred["probabilities"].values())
    # the recipe is predict's default; plain files have no gender: its thresholds fall back
    assert {m["method"] for m in payload["models"]} == {"recommended"}
    assert all(p["decision"] is not None for p in payload["predictions"])
    assert "warning: " in err and "Traceback" not in err

    code, stdout, err = _cli(["demo", "--out", str(out), "--no-progress"], capsys)
    assert code in (0, None)
    assert "(0 trained, 16 reused)" in err


def test_dry_run_checks_corpus_roots_kinds_and_frontend(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "tgt").mkdir()
    path = tmp_path / "grid.yaml"

    def dry(source="ravdess:src", target="casia:tgt", frontend="logmel", methods="[pa]"):
        path.write_text(f"source: {source}\ntargets: [{target}]\nemotions: [angry, happy]\n"
                        f"features: {{frontend: {frontend}}}\nmethods: {methods}\nseeds: [0]\n")
        return _cli(["run", str(path), "--dry-run"], capsys)

    code, _, err = dry()
    # dry-run reads the manifests (it estimates the store from their durations): empty corpus
    # folders fail as the real run would, in one line
    assert code == 2 and "no utterances found under" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for kwargs, fragment in [
        ({"target": "casia:nowhere"}, "targets.0: casia:"),
        ({"source": "ravdess:nowhere"}, "source: ravdess:"),
        ({"target": "cassia:tgt"}, "unknown corpus kind 'cassia'"),
        ({"frontend": "whisper-huge"}, "features.frontend: unknown frontend 'whisper-huge'"),
        ({"methods": "[pa-xyz]"}, "methods: unknown method(s) ['pa-xyz']"),
    ]:
        code, _, err = dry(**kwargs)
        assert code == 2, (kwargs, err)
        assert err.startswith(f"error: {path}: ") and fragment in err, (kwargs, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = dry(target="casia:nowhere")
    assert "nowhere: corpus root not found" in err


def test_run_device_moves_fits_and_extraction_without_changing_fit_ids(tmp_path, capsys,
                                                                      monkeypatch):
    import json
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    try:
        from grid_fakes import FakeLayers
    finally:
        sys.path.pop(0)
    layers = FakeLayers()
    monkeypatch.setattr("fairser.experiments.runner.default_backend", lambda: layers.backend())
    path = str(tmp_path / "fake.yaml")
    Path(path).write_text("source: fake-source:/x\ntargets: [fake-target:/y]\n"
                          "run_emotions: [angry]\nseeds: [0]\nbootstrap: {n_resamples: 0}\n"
                          "methods: [source-only, {name: tuned, method: pa, "
                          "training: {device: auto}}]\n")

    def ids(folder):
        return sorted(set(pd.read_csv(folder / "results.csv")["run_id"]))

    code, _, err = _cli(["run", path, "--out", str(tmp_path / "plain"), "--no-progress"], capsys)
    assert code in (0, None), err
    assert layers.extract_runtime[-1]["device"] == "auto"
    assert {f["config"].get("device") for f in layers.fits} == {None, "auto"}
    layers.fits.clear()
    code, _, err = _cli(["run", path, "--out", str(tmp_path / "cpu"), "--no-progress",
                         "--device", "cpu"], capsys)
    assert code in (0, None), err
    assert layers.extract_runtime[-1]["device"] == "cpu"
    assert [f["config"]["device"] for f in layers.fits] == ["cpu", "cpu"]  # variant's too
    assert ids(tmp_path / "cpu") == ids(tmp_path / "plain") and len(ids(tmp_path / "cpu")) == 3
    meta = json.loads((tmp_path / "cpu" / "meta.json").read_text())
    assert meta["command"].endswith("--device cpu")
    # resuming the first folder on the CPU reuses every fit
    code, _, err = _cli(["run", path, "--out", str(tmp_path / "plain"), "--no-progress",
                         "--device", "cpu"], capsys)
    assert code in (0, None) and "(0 trained, 3 reused)" in err, err
    code, _, err = _cli(["run", path, "--device", "gpu", "--dry-run"], capsys)
    assert code == 2 and "--device: device 'gpu' is not one of auto | cpu" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
