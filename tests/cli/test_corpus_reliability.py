"""`fairser corpus` on damaged corpora: every case is a reported problem or a one-line error.

Also: export by file ending (.csv writes CSV, .parquet writes parquet, anything else is an
error), ``--audio-check`` and the ASED gender conflicts resolved on request.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fairser.cli import main
from fairser.corpora import load_corpus


def _run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def ravdess(tmp_path) -> Path:
    root = tmp_path / "ravdess"
    rng = np.random.default_rng(0)
    for actor in range(1, 7):
        for emo in (1, 3, 4, 5):
            path = root / f"Actor_{actor:02d}" / f"03-01-{emo:02d}-01-01-01-{actor:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), 0.1 * rng.standard_normal(1600).astype(np.float32), 16000)
    return root


@pytest.fixture
def damaged(ravdess, tmp_path) -> Path:
    a1 = ravdess / "Actor_01"
    (a1 / "03-01-02-01-01-01-01.m4a").write_bytes(b"\0\0\0 ftypM4A ")
    (a1 / "03-01-02-01-02-01-01.wav").symlink_to(tmp_path / "gone.wav")
    (a1 / "03-01-02-02-01-01-01.wav").write_bytes(b"")
    good = (a1 / "03-01-01-01-01-01-01.wav").read_bytes()
    (a1 / "03-01-02-02-02-01-01.wav").write_bytes(good[: len(good) // 2])
    sf.write(str(ravdess / "Actor_02" / "03-01-02-01-01-01-02.wav"), np.zeros(1600), 16000)
    return ravdess


def test_inspect_reports_every_damaged_file_without_traceback(capsys, damaged):
    code, out, err = _run(capsys, "corpus", "inspect", f"ravdess:{damaged}", "--json")
    assert code == 1 and "Traceback" not in err
    data = json.loads(out)
    assert data["problems"]["by_kind"] == {"broken-link": 1, "unreadable-audio": 1,
                                           "unsupported-audio": 1, "truncated-audio": 1}
    assert data["utterances"] == 25 and data["audio_check"] == "headers"  # 24 + the silent one
    code, out, err = _run(capsys, "corpus", "inspect", f"ravdess:{damaged}", "--json",
                          "--audio-check")
    data = json.loads(out)
    assert code == 1 and data["audio_check"] == "samples"
    assert data["problems"]["by_kind"]["silent-audio"] == 1 and data["utterances"] == 24
    code, out, err = _run(capsys, "corpus", "inspect", f"ravdess:{damaged}")
    assert code == 1 and "Traceback" not in out + err
    assert "5 problem(s)" not in out and "4 problem(s)" in out
    assert "add --audio-check" in out


def test_load_error_is_one_line_naming_files_and_fix(capsys, damaged, tmp_path):
    code, _, err = _run(capsys, "corpus", "export", f"ravdess:{damaged}",
                        str(tmp_path / "m.parquet"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for words in ("broken-link in 03-01-02-01-02-01-01.wav", "empty file (0 bytes)",
                  "unsupported-audio '.m4a'", "truncated-audio in 03-01-02-02-02-01-01.wav",
                  "--skip-bad"):
        assert words in err
    code, _, err = _run(capsys, "corpus", "export", f"ravdess:{damaged}",
                        str(tmp_path / "m.parquet"), "--skip-bad")
    assert code == 0 and len(pd.read_parquet(tmp_path / "m.parquet")) == 25
    assert len(pd.read_csv(tmp_path / "m.skipped.csv")) == 4


def test_export_format_follows_the_file_ending(capsys, ravdess, tmp_path):
    spec = f"ravdess:{ravdess}"
    code, _, err = _run(capsys, "corpus", "export", spec, str(tmp_path / "m.csv"))
    assert code == 0 and "wrote 24 utterances" in err
    raw = (tmp_path / "m.csv").read_bytes()
    assert raw.startswith(b"corpus,utt_id,path,speaker,gender,emotion,split,language,duration_s")
    back = load_corpus(f"csv:{tmp_path / 'm.csv'}", options={"name": "ravdess"})
    expected = load_corpus(spec)
    pd.testing.assert_frame_equal(back[expected.columns[:9]], expected[expected.columns[:9]])
    code, _, _ = _run(capsys, "corpus", "export", spec, str(tmp_path / "m.parquet"))
    assert code == 0 and (tmp_path / "m.parquet").read_bytes()[:4] == b"PAR1"
    for name in ("m.txt", "m.CSV.gz", "manifest"):
        code, _, err = _run(capsys, "corpus", "export", spec, str(tmp_path / name))
        assert code == 2 and err.count("\n") == 1 and not (tmp_path / name).exists()
        assert "name the file .parquet (typed, compact) or .csv (plain text)" in err
    # the ending is checked before the corpus is scanned
    code, _, err = _run(capsys, "corpus", "export", "ravdess:/no/such/dir", str(tmp_path / "x"))
    assert code == 2 and "cannot tell the manifest format" in err


def test_unreadable_label_table_is_one_line(capsys, tmp_path):
    (tmp_path / "t.csv").write_bytes(b"path,speaker\n\xff.wav,x\n")
    code, _, err = _run(capsys, "corpus", "inspect", f"csv:{tmp_path / 't.csv'}")
    assert code == 2 and err.count("\n") == 1 and "save it as UTF-8" in err


@pytest.mark.shared_data
def test_ased_conflicts_reported_then_resolved(capsys, shared_data):
    spec = f"ased:{shared_data / 'ased'}"
    code, out, _ = _run(capsys, "corpus", "inspect", spec, "--json")
    data = json.loads(out)
    assert code == 1 and data["problems"]["by_kind"] == {"gender-conflict": 5}
    assert data["resolved"] == {"total": 0, "rows": []}
    code, out, _ = _run(capsys, "corpus", "inspect", spec, "--json", "-o",
                        "resolve_gender=majority")
    data = json.loads(out)
    assert code == 0 and data["problems"]["total"] == 0 and data["utterances"] == 2474
    assert data["speakers"] == {"total": 65, "M": 40, "F": 25, "unknown": 0}
    assert data["resolved"]["total"] == 5
    assert {r["utt_id"] for r in data["resolved"]["rows"]} == {
        "s4-01-02-02-09", "f2-01-01-02-15", "f2-07-02-02-21", "s4-04-01-02-23",
        "f2-02-01-02-25"}
    code, out, _ = _run(capsys, "corpus", "inspect", spec, "-o", "resolve_gender=majority")
    assert code == 0 and "resolved (5 row(s) kept with a changed value)" in out
