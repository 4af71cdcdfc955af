"""`fairser features extract|list` through the real entry point."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from fairser.cli import main


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_extract_csv_corpus_twice_and_bad_csv(make_corpus, tmp_path, capsys) -> None:
    df = make_corpus([0.5, 0.6])
    nan = np.full(8000, np.nan, np.float32)
    sf.write(tmp_path / "audio" / "nan.wav", nan, 16000, subtype="FLOAT")
    df.loc[len(df)] = ["syn", "nan", str(tmp_path / "audio" / "nan.wav"), "s9", "F",
                       "neutral", "train", "en", 0.5]
    df.to_csv(tmp_path / "m.csv", index=False)
    args = ["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--frontend", "logmel",
            "--cache", str(tmp_path / "c"), "--option", "n_mels=40",
            "--bad-csv", str(tmp_path / "bad.csv"), "--no-progress"]
    code, _, err = _cli(args, capsys)
    assert code == 0, err
    assert "3 rows, 0 cached, 2 computed (" in err and "), 1 bad" in err and "NaN" in err
    assert "nan.wav" in (tmp_path / "bad.csv").read_text()
    code, _, err = _cli(args, capsys)
    assert code == 0 and "3 rows, 2 cached, 0 computed, 1 bad" in err
    assert len(list((tmp_path / "c" / "features").glob("logmel-*/*/*.npy"))) == 2


def test_errors_are_one_line_exit_2(make_corpus, tmp_path, capsys) -> None:
    df = make_corpus([0.5])
    df.to_csv(tmp_path / "m.csv", index=False)
    base = ["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--cache", str(tmp_path)]
    for extra, message in [(["--frontend", "mfcc"], "unknown frontend 'mfcc'"),
                           (["--frontend", "whisper-tiny.en", "--layers", "9"], "out of range"),
                           (["--frontend", "logmel", "--option", "nmels"], "expected KEY=VALUE")]:
        code, _, err = _cli(base + extra, capsys)
        assert code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_list_frontends(capsys) -> None:
    code, out, _ = _cli(["features", "list"], capsys)
    assert code == 0
    assert out.split() == ["whisper-base", "whisper-tiny.en", "logmel", "egemaps-lld",
                           "compare-lld", "egemaps-functionals", "hf:<hub", "id", "or", "local",
                           "folder>"]
