"""`fairser run`, `fairser demo`, `fairser predict` through the real entry point."""

from __future__ import annotations

import pytest

from fairser.cli import main


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
