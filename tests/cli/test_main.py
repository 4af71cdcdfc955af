"""`fairser.cli.main`: how errors reach the terminal."""

from __future__ import annotations

import pytest

import fairser.cli as cli
from fairser.cli import main


def _cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_wrong_kind_of_path_is_one_line_exit_2(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = _cli(["demo", "--out", str(afile), "--no-progress"], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {afile}: ") and "pass a folder path" in last
    assert "Traceback" not in err


@pytest.mark.parametrize("exc, fragment", [
    (IsADirectoryError(21, "Is a directory", "/tmp/x.tmp", None, "/out/dir"),
     "/out/dir: is a folder, not a file; pass a file path"),
    (PermissionError(13, "Permission denied", "/ro/file"),
     "/ro/file: permission denied; choose a location you can write to"),
])
def test_os_errors_with_a_path_are_one_line(monkeypatch, capsys, exc, fragment):
    def fake_app(**_):
        raise exc

    monkeypatch.setattr(cli, "app", fake_app)
    code, _, err = _cli([], capsys)
    assert code == 2 and err.strip() == f"error: {fragment}"


def test_os_errors_without_a_path_keep_their_traceback(monkeypatch):
    def fake_app(**_):
        raise OSError("no path involved")

    monkeypatch.setattr(cli, "app", fake_app)
    with pytest.raises(OSError, match="no path involved"):
        main([])


def test_help_keeps_square_brackets_that_rich_would_read_as_markup(capsys, monkeypatch):
    # `pip install 'fairser[ray]'` must survive typer's rich help rendering
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _cli(["run", "--help"], capsys)
    assert code == 0
    assert "pip install 'fairser[ray]'" in out


def test_gpus_per_fit_with_a_non_ray_executor_is_one_line_before_any_work(tmp_path, capsys):
    missing = tmp_path / "never-read.yaml"  # the executor is checked before the config
    code, _, err = _cli(["run", str(missing), "--executor", "processes:2",
                         "--gpus-per-fit", "0.5"], capsys)
    assert code == 2
    assert err.strip().startswith("error: --gpus-per-fit applies to --executor ray only")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_python_dash_m_fairser_is_the_fairser_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fairser", "--help"], capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert "run" in out.stdout and "predict" in out.stdout


def test_predict_rejects_an_unknown_precision_in_one_line(tmp_path, capsys):
    code, _, err = _cli(["predict", "--run", str(tmp_path), "--precision", "fp8",
                         str(tmp_path / "a.wav")], capsys)
    assert code == 2
    assert err.strip() == "error: --precision 'fp8' is not one of fp32 | bf16 | fp16"
