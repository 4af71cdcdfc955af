"""Sharded extraction: K/N partition, torchrun environment, shard processes filling one store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fairser.corpora import load_corpus
from fairser.errors import ConfigError
from fairser.features import extract
from fairser.features.shard import (
    check_shard,
    parse_shard,
    shard_from_env,
    shard_mask,
    shard_of,
)

CLI = "from fairser.cli import main; main()"


def test_partition_is_fixed_and_covers_every_key_once() -> None:
    # Fixed values: the partition must not change across versions, processes or machines.
    assert [shard_of(k, 4) for k in ("ravdess/03-01-01-01-01-01-01", "casia/liuchanhg-angry-201",
                                     "syn/utt000", "emodb/03a01Fa")] == [3, 1, 3, 0]
    keys = [f"c/u{i}" for i in range(300)]
    masks = [shard_mask(keys, (k, 3)) for k in range(3)]
    assert (sum(m.astype(int) for m in masks) == 1).all()
    assert all(60 < m.sum() < 140 for m in masks)  # roughly balanced
    assert shard_mask(list(reversed(keys)), (1, 3)).tolist() == masks[1][::-1].tolist()


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0", "0/2/3", ""])
def test_bad_shards_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"expected K/N with 0 <= K < N \(0-based"):
        parse_shard(text)


def test_shard_forms_and_env() -> None:
    assert parse_shard(" 1/4 ") == (1, 4) and check_shard((0, 1)) == (0, 1)
    assert check_shard(None) is None and check_shard("3/4") == (3, 4)
    with pytest.raises(ConfigError):
        check_shard((4, 4))
    assert shard_from_env({}) is None
    assert shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (1, 2)
    with pytest.raises(ConfigError, match="outside 0..1"):
        shard_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="not integers"):
        shard_from_env({"RANK": "x", "WORLD_SIZE": "2"})


def _entries(cache: Path) -> dict[str, bytes]:
    root = cache / "features"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.glob("logmel-*/*/*.npy")}


def _run(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_shard_processes_fill_the_store_like_one_process(make_corpus, tmp_path: Path) -> None:
    durations = [0.4 + 0.05 * i for i in range(12)]
    df = make_corpus(durations)
    # A byte-identical copy under another key: duplicates of one content are fine.
    dup = df.iloc[[0]].assign(utt_id="copy-of-utt000")
    pd.concat([df, dup], ignore_index=True).to_csv(tmp_path / "m.csv", index=False)
    full = load_corpus(f"csv:{tmp_path / 'm.csv'}")
    keys = [f"{c}/{u}" for c, u in zip(full.corpus, full.utt_id, strict=True)]
    assert {shard_of(k, 2) for k in keys} == {0, 1}
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    cache = tmp_path / "sharded"
    base = ["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--frontend", "logmel",
            "--cache", str(cache), "--no-progress"]
    procs = [_run([*base, "--shard", f"{k}/2"], env) for k in (0, 1)]  # concurrently
    for k, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        n = sum(shard_of(key, 2) == k for key in keys)
        assert f"logmel shard {k}/2: {n} rows" in err

    # A plain extraction afterwards: complete, nothing to compute.
    fs = extract(full, "logmel", cache_dir=cache, progress=False, check_only=True)
    assert fs.stats.n_missing == 0 and fs.stats.n_cached == len(full)
    single = tmp_path / "single"
    extract(full, "logmel", cache_dir=single, progress=False)
    assert _entries(cache) == _entries(single)  # the union equals one process, byte for byte
    runs = [json.loads(line) for line in next((cache / "features").glob("logmel-*")).joinpath(
        "extractions.jsonl").read_text().splitlines()]
    assert sorted(r["shard"] for r in runs) == [[0, 2], [1, 2]]


def test_torchrun_env_picks_the_shard_and_plain_run_completes(
        make_corpus, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from fairser.cli import main

    make_corpus([0.4 + 0.05 * i for i in range(8)]).to_csv(tmp_path / "m.csv", index=False)
    df = load_corpus(f"csv:{tmp_path / 'm.csv'}")
    keys = [f"{c}/{u}" for c, u in zip(df.corpus, df.utt_id, strict=True)]
    mine = [k for k in keys if shard_of(k, 2) == 1]
    assert 0 < len(mine) < len(keys)
    cache = tmp_path / "c"
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)  # what torchrun sets for the second process
    with pytest.raises(SystemExit) as info:
        main(["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--frontend", "logmel",
              "--cache", str(cache), "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 0 and f"shard 1/2: {len(mine)} rows" in err, err
    done = extract(df, "logmel", cache_dir=cache, progress=False, check_only=True)
    assert sorted(done.keys()) == sorted(mine)
    assert sorted(done.missing) == sorted(set(keys) - set(mine))

    rest = extract(df, "logmel", cache_dir=cache, progress=False)
    assert rest.stats.n_cached == len(mine) and rest.stats.n_computed == len(keys) - len(mine)


def test_check_only_through_the_cli_reports_missing(make_corpus, tmp_path: Path, capsys,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from fairser.cli import main

    df = make_corpus([0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    df.to_csv(tmp_path / "m.csv", index=False)
    base = ["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--frontend", "logmel",
            "--cache", str(tmp_path / "c"), "--no-progress"]
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as info:
        main(base)
    assert info.value.code == 0 and "shard 0/2" in capsys.readouterr().err
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    n_other = sum(shard_of(f"csv/{u}", 2) == 1 for u in df.utt_id)
    with pytest.raises(SystemExit) as info:
        main([*base, "--check-only"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"{n_other} missing" in err
    assert f"{n_other} row(s) missing and 0 damaged" in err.strip().splitlines()[-1]
    with pytest.raises(SystemExit) as info:
        main([*base, "--shard", "5/2"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--shard 5/2: expected K/N" in err
