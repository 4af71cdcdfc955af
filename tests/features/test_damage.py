"""Damaged store entries: reported on read, recomputed by the next extract, found by --verify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairser.cli import main
from fairser.errors import FeatureError
from fairser.features import extract


def _cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("kind", ["empty", "truncated", "header", "dim", "layers", "dtype",
                                  "nan"])
def test_next_extract_recomputes_a_damaged_entry(kind: str, make_corpus, damage_entry,
                                                 tmp_path: Path) -> None:
    df = make_corpus([0.5, 0.7, 0.9])
    cache = tmp_path / "c"
    first = extract(df, "logmel", options={"n_mels": 16}, cache_dir=cache, progress=False)
    good = np.array(first["syn/utt001"])
    entry = first.path("syn/utt001")
    damage_entry(entry, kind)
    with pytest.raises(FeatureError) as info:  # never EOFError, never wrong numbers
        first["syn/utt001"]
    assert str(info.value).startswith(f"{entry}: damaged feature entry")
    assert "\n" not in str(info.value)

    checked = extract(df, "logmel", options={"n_mels": 16}, cache_dir=cache, progress=False,
                      check_only=True)
    assert checked.stats.n_damaged == 1 and checked.stats.n_missing == 0
    assert checked.stats.n_cached == 2 and "syn/utt001" not in checked
    assert list(checked.damaged.utt_id) == ["utt001"]

    again = extract(df, "logmel", options={"n_mels": 16}, cache_dir=cache, progress=False)
    assert (again.stats.n_cached, again.stats.n_computed, again.stats.n_damaged) == (2, 1, 1)
    assert again.damaged.entry[0] == str(entry) and again.damaged.reason[0]
    np.testing.assert_array_equal(again["syn/utt001"], good)
    clean = extract(df, "logmel", options={"n_mels": 16}, cache_dir=cache, progress=False)
    assert (clean.stats.n_cached, clean.stats.n_damaged) == (3, 0)


def test_verify_reads_every_value(make_corpus, damage_entry, tmp_path: Path) -> None:
    df = make_corpus([0.5, 0.7])
    cache = tmp_path / "c"
    first = extract(df, "logmel", cache_dir=cache, progress=False)
    damage_entry(first.path("syn/utt000"), "nan-unsampled")
    cheap = extract(df, "logmel", cache_dir=cache, progress=False)
    assert cheap.stats.n_cached == 2  # the sample misses a single NaN in frame 7
    full = extract(df, "logmel", cache_dir=cache, progress=False, verify=True)
    assert (full.stats.n_damaged, full.stats.n_computed, full.stats.verified) == (1, 1, True)
    assert "non-finite" in full.damaged.reason[0]
    assert np.isfinite(full["syn/utt000"]).all()


def test_damage_through_the_cli(make_corpus, damage_entry, tmp_path: Path, capsys) -> None:
    df = make_corpus([0.5, 0.6, 0.7])
    df.to_csv(tmp_path / "m.csv", index=False)
    base = ["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--frontend", "logmel",
            "--cache", str(tmp_path / "c"), "--no-progress"]
    code, err = _cli(base, capsys)
    assert code == 0 and "3 rows, 0 cached, 3 computed" in err
    entries = sorted((tmp_path / "c" / "features").glob("logmel-*/*/*.npy"))
    damage_entry(entries[0], "empty")
    damage_entry(entries[1], "nan-unsampled")

    code, err = _cli(base + ["--check-only"], capsys)
    assert code == 2 and "Traceback" not in err and "Aborted" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and "0 row(s) missing and 1 damaged" in last
    assert "without --check-only" in last and "empty file" in err

    code, err = _cli(base, capsys)
    assert code == 0 and "2 cached, 1 computed" in err and "1 damaged (recomputed)" in err
    code, err = _cli(base + ["--verify"], capsys)
    assert code == 0 and "2 cached, 1 computed" in err and "1 damaged (recomputed)" in err
    assert "non-finite" in err
    code, err = _cli(base + ["--verify", "--check-only"], capsys)
    assert code == 0 and "3 cached, 0 missing, 0 damaged" in err


@pytest.mark.parametrize("mapped", [True, False])
def test_read_entry_serves_intact_entries_and_refuses_damaged_ones(tmp_path: Path,
                                                                  mapped: bool) -> None:
    """Both read modes: the same values; a map or an owned copy; one-line errors naming the
    file for a missing, truncated, foreign or non-finite entry."""
    from fairser.features.entry import EntrySpec, is_mapped, read_entry

    a = np.random.default_rng(0).normal(size=(2, 7, 5)).astype(np.float16)
    path = tmp_path / "e.npy"
    np.save(path, a)
    got = read_entry(path, EntrySpec(2, 5), mmap=mapped)
    assert np.array_equal(got, a) and got.dtype == np.float16
    assert is_mapped(got) == mapped and (got.flags.writeable != mapped)
    bad = {
        "missing": None,
        "truncated": path.read_bytes()[:-3],
        "not npy": b"hello world" * 20,
        "nan": None,
    }
    for name, content in bad.items():
        p = tmp_path / f"{name.replace(' ', '_')}.npy"
        if name == "nan":
            b = a.copy()
            b[1, -1, 0] = np.nan  # the last frame of the last layer: always sampled
            np.save(p, b)
        elif content is not None:
            p.write_bytes(content)
        with pytest.raises(FeatureError, match=str(p)) as err:
            read_entry(p, EntrySpec(2, 5), mmap=mapped)
        assert "\n" not in str(err.value)
    with pytest.raises(FeatureError, match="does not match"):
        read_entry(path, EntrySpec(3, 5), mmap=mapped)
