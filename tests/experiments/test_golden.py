"""A fixed small grid on the fake layers gives the same results.csv as before the runner split.

``data/golden_results.csv`` was written by the runner before it was split into planning,
scoring, baseline and provenance modules; the timing column (``fit_s``) is left out. Since then
two documented changes: the linear baseline is called ``linear-baseline`` (was
``linear-probe``), so its rows carry the new name and the id and hash that follow from it; and
results.csv ends with ``status`` (``ok`` here) and ``reason`` (empty). Columns the metrics layer
added since (``task``, ``n_classes``, ``class_average``, ``<metric>_note``) are not compared;
every column of the golden file is, byte for byte, in its order.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from rich.console import Console

from fairser.experiments import (
    BASELINE_METHOD,
    LEGACY_BASELINE_METHODS,
    parse_config,
    run_experiment,
)

GOLDEN = Path(__file__).parent / "data" / "golden_results.csv"
GOLDEN_SPEAKERS = Path(__file__).parent / "data" / "golden_per_speaker.csv"
TIMING = ("fit_s",)
ADDED = ("status", "reason")  # added after the golden file was written

SETTINGS = {
    "name": "golden", "source": "fake-source:/x", "targets": ["fake-target:/y"],
    "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry", "happy"],
    "methods": ["source-only", "pa-cfa"], "seeds": [0, 1],
    "source_subsample": [{"keep": 1.0}, {"gender": "F", "keep": 0.5}],
    "sweep": {"params": {"alpha": [0.1, 1.0]}, "methods": ["pa-cfa"]},
    "bootstrap": {"n_resamples": 20},
}


def without_timing(path: Path, golden: Path) -> str:
    """The columns of ``golden`` (timing dropped) of the CSV at ``path``, as text."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "status" in df.columns:
        assert set(df["status"]) == {"ok"}
        assert set(df["reason"]) == {""}
    columns = list(pd.read_csv(golden, nrows=0).columns)
    assert all(c in df.columns for c in columns), set(columns) - set(df.columns)
    buf = io.StringIO()
    df[[c for c in columns if c not in TIMING + ADDED]].to_csv(buf, index=False)
    return buf.getvalue()


def grid_csv(layers, out: Path, **kwargs) -> tuple[str, str]:
    """results.csv and per_speaker.csv of the fixed grid, as the golden files hold them."""
    run_experiment(parse_config(SETTINGS), out_dir=out, progress=False,
                   console=Console(quiet=True), backend=layers.backend(real_metrics=True),
                   **kwargs)
    return (without_timing(out / "results.csv", GOLDEN),
            without_timing(out / "per_speaker.csv", GOLDEN_SPEAKERS))


def renamed(golden: Path, got: str) -> str:
    """``golden`` with the baseline rename applied (name, and the id and hash it changes)."""
    exp = pd.read_csv(golden, dtype=str, keep_default_na=False)
    now = pd.read_csv(io.StringIO(got), dtype=str, keep_default_na=False)
    old = exp["method"].isin(LEGACY_BASELINE_METHODS)
    assert old.any() and len(exp) == len(now)
    assert (now.loc[old, "method"] == BASELINE_METHOD).all()
    assert now.loc[old, "run_id"].str.startswith(f"{BASELINE_METHOD}__").all()
    exp.loc[old, "method"] = BASELINE_METHOD
    for col in ("run_id", "config_hash"):
        exp.loc[old, col] = now.loc[old, col]
    buf = io.StringIO()
    exp.to_csv(buf, index=False)
    return buf.getvalue()


def test_results_csv_matches_golden(fake_layers, tmp_path):
    results, speakers = grid_csv(fake_layers, tmp_path / "run")
    assert results == renamed(GOLDEN, results)
    assert speakers == renamed(GOLDEN_SPEAKERS, speakers)
