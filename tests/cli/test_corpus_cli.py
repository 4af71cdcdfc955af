"""`fairser corpus inspect|export|list`: output, exit codes, skipped rows, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fairser.cli import main
from fairser.corpora import load_corpus


def _set_columns(monkeypatch, columns: str | None) -> None:
    """Pin the terminal width the output is laid out for (None: no COLUMNS, as in CI)."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)


def _tokens(text: str) -> set[str]:
    """The words of ``text`` with table borders taken out: content, not layout."""
    return set(re.sub(r"[\u2500-\u257f]", " ", text).split())


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


def test_inspect_json_clean(capsys, ravdess):
    code, out, _ = _run(capsys, "corpus", "inspect", f"ravdess:{ravdess}", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["spec", "corpus", "utterances", "speakers", "utterances_by_gender",
                          "emotions", "splits", "languages", "hours", "duration_s", "problems",
                          "resolved", "audio_check", "skipped_csv"]
    assert data["resolved"] == {"total": 0, "rows": []}
    assert data["audio_check"] == "headers"
    assert data["utterances"] == 24
    assert data["speakers"] == {"total": 6, "M": 3, "F": 3, "unknown": 0}
    assert data["emotions"]["angry"] == {"M": 3, "F": 3, "unknown": 0, "total": 6}
    assert list(data["emotions"]) == ["neutral", "happy", "sad", "angry"]
    assert data["duration_s"]["total"] == pytest.approx(2.4)
    assert data["problems"] == {"total": 0, "by_kind": {}, "rows": []}
    assert data["skipped_csv"] is None


@pytest.mark.parametrize("columns", ["40", "300", None])
def test_inspect_text_lists_problems_and_exits_1(capsys, ravdess, monkeypatch, columns):
    """Messages stay whole at any width; tables fold but hide nothing and keep problem kinds."""
    _set_columns(monkeypatch, columns)
    bad = ravdess / "Actor_01" / "03-01-09-01-01-01-01.wav"
    bad.write_bytes((ravdess / "Actor_01" / "03-01-01-01-01-01-01.wav").read_bytes())
    (ravdess / "Actor_02" / "03-01-01-01-01-02-02.wav").write_bytes(b"RIFF broken")
    code, out, _ = _run(capsys, "corpus", "inspect", f"ravdess:{ravdess}")
    assert code == 1
    lines = out.splitlines()
    assert f"ravdess:{ravdess}" in lines
    assert any(line.startswith("24 utterances, 6 speakers (3 M, 3 F, 0 unknown), ")
               for line in lines)
    assert "2 problem(s): unknown-emotion 1, unreadable-audio 1" in lines
    assert {"unknown-emotion", "unreadable-audio"} <= _tokens(out)  # never folded
    assert "…" not in out  # folded, never cut off
    if columns == "300":  # wide enough for one line per problem: the reasons and files
        assert "unknown emotion code '09'" in out and "03-01-01-01-01-02-02.wav" in out


def test_inspect_skip_bad_writes_reasons(capsys, ravdess, tmp_path, monkeypatch):
    (ravdess / "Actor_03" / "03-01-01-01-01-02-03.wav").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "corpus", "inspect", f"ravdess:{ravdess}", "--json",
                        "--skip-bad")
    assert code == 0
    data = json.loads(out)
    assert data["skipped_csv"] == "ravdess.skipped.csv"
    assert data["problems"]["by_kind"] == {"unreadable-audio": 1}
    skipped = pd.read_csv(tmp_path / "ravdess.skipped.csv")
    assert list(skipped.columns) == ["kind", "path", "source", "line", "utt_id", "code", "reason"]
    assert skipped["utt_id"].tolist() == ["03-01-01-01-01-02-03"]
    assert skipped["reason"].iloc[0].startswith("unreadable audio")
    target = tmp_path / "elsewhere.csv"
    code, _, _ = _run(capsys, "corpus", "inspect", f"ravdess:{ravdess}", "--skip-bad",
                      "--skipped", str(target))
    assert code == 0 and target.is_file()


def test_export_round_trip_and_problems(capsys, ravdess, tmp_path):
    out = tmp_path / "m.parquet"
    code, _, err = _run(capsys, "corpus", "export", f"ravdess:{ravdess}", str(out),
                        "-o", "seed=4")
    assert code == 0 and "wrote 24 utterances" in err
    pd.testing.assert_frame_equal(pd.read_parquet(out),
                                  load_corpus(f"ravdess:{ravdess}", options={"seed": 4}))
    assert not list(tmp_path.glob(".m.parquet.*"))  # atomic: no temp file left
    (ravdess / "Actor_01" / "03-01-10-01-01-01-01.wav").write_bytes(
        (ravdess / "Actor_01" / "03-01-01-01-01-01-01.wav").read_bytes())
    out2 = tmp_path / "m2.parquet"
    code, _, err = _run(capsys, "corpus", "export", f"ravdess:{ravdess}", str(out2))
    assert code == 2 and not out2.exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: ravdess:{ravdess}: 1 problem(s): unknown-emotion '10' in "
                          "03-01-10-01-01-01-01.wav")
    code, _, err = _run(capsys, "corpus", "export", f"ravdess:{ravdess}", str(out2),
                        "--skip-bad")
    assert code == 0 and len(pd.read_parquet(out2)) == 24
    assert pd.read_csv(tmp_path / "m2.skipped.csv")["code"].tolist() == [10]
    code, _, err = _run(capsys, "corpus", "export", f"ravdess:{ravdess}", str(out2), "-o",
                        'label_map={"10": "other"}')
    assert code == 0 and (pd.read_parquet(out2)["emotion"] == "other").sum() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("corpus", "inspect", "nope:/x"), "error: corpus spec 'nope:/x': unknown corpus kind"),
        (("corpus", "inspect", "ravdess:/no/such/dir"), "error: ravdess:/no/such/dir: corpus "
         "folder not found"),
        (("corpus", "inspect", "ravdess:/x", "-o", "seed"), "error: --option 'seed': expected "
         "KEY=VALUE"),
    ],
)
def test_errors_are_one_line(capsys, args, message):
    code, _, err = _run(capsys, *args)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1


def test_unknown_option_key(capsys, ravdess):
    code, _, err = _run(capsys, "corpus", "inspect", f"ravdess:{ravdess}", "-o", "sed=3")
    assert code == 2
    assert err.startswith("error: ravdess options: unknown key 'sed'; known keys are ")


@pytest.mark.parametrize("columns", ["40", "300", None])
def test_list(capsys, monkeypatch, columns):
    """Every kind is listed whole (a name to copy), whatever the terminal width."""
    _set_columns(monkeypatch, columns)
    code, out, _ = _run(capsys, "corpus", "list")
    assert code == 0
    from fairser.corpora import CORPORA

    assert set(CORPORA) >= {"ravdess", "casia", "emodb", "emovo", "crema-d", "iemocap",
                            "msp-podcast", "biic-podcast", "csv", "synthetic-source",
                            "synthetic-target"}
    assert set(CORPORA) <= _tokens(out)
    assert "…" not in out


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("kind", "utterances", "speakers", "check"),
    [
        ("ravdess", 1440, {"total": 24, "M": 12, "F": 12, "unknown": 0},
         lambda e: e["angry"]["M"] == 96 and e["angry"]["F"] == 96),
        ("casia", 1200, {"total": 4, "M": 2, "F": 2, "unknown": 0},
         lambda e: len(e) == 6 and all(c["M"] == 100 and c["F"] == 100 for c in e.values())),
        ("emodb", 535, {"total": 10, "M": 5, "F": 5, "unknown": 0}, lambda e: len(e) == 7),
    ],
)
def test_inspect_real_data(capsys, shared_data, kind, utterances, speakers, check):
    code, out, _ = _run(capsys, "corpus", "inspect", f"{kind}:{shared_data / kind}", "--json")
    data = json.loads(out)
    assert code == 0 and data["problems"]["total"] == 0
    assert data["utterances"] == utterances and data["speakers"] == speakers
    assert check(data["emotions"])
