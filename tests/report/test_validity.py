"""No silent wrong numbers: undefined cells read n/a with a reason, failed runs are shown as
failed and left out of every mean, and the report survives NaN everywhere."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import fairser.methods
from fairser.report import (
    failed_runs,
    method_label,
    method_order,
    paper_tables,
    table_html,
    table_markdown,
    write_report,
)

BOREDOM = (
    "no positive examples in this test set, so UAR (the mean recall over the classes) is undefined"
)


def _boredom(results_factory) -> pd.DataFrame:
    """Target casia has no boredom: UAR and dEO undefined there, dSP still a number."""
    df = results_factory(seeds=(0, 1), emotions=("angry", "boredom"), methods=("source-only", "pa"))
    target = (df.emotion == "boredom") & (df.role == "target")
    df["uar_note"] = np.where(target, BOREDOM, "")
    df["deo_max_note"] = np.where(target, "equalized odds needs both rate gaps", "")
    df.loc[target, ["uar", "deo_max", "uar_lo", "uar_hi"]] = np.nan
    df.loc[target & (df.method == "pa"), "uar"] = 0.875  # a stale number next to its note
    return df


def _row(md: str, title: str, label: str) -> list[str]:
    lines = md.splitlines()
    start = lines.index(f"### {title}")
    row = next(line for line in lines[start:] if line.startswith(f"| {label} "))
    return [c.strip() for c in row.strip("|").split("|")]


def test_undefined_cells_read_na_with_a_footnote_and_are_never_bold(results_factory) -> None:
    md = table_markdown(_boredom(results_factory))
    for label in ("Source-only", "PA"):
        cells = _row(md, "casia (target)", label)
        # columns: angry UAR dSP dEO, boredom UAR dSP dEO
        assert re.fullmatch(r"n/a\[\^\d+\]", cells[4]), cells
        assert re.fullmatch(r"n/a\[\^\d+\]", cells[6]), cells
        assert re.fullmatch(r"\*{0,2}0\.\d{3} ± 0\.\d{3}\*{0,2}", cells[5]), cells
        assert "0.875" not in cells[4]
    number = re.search(r"n/a\[\^(\d+)\]", _row(md, "casia (target)", "PA")[4]).group(1)
    assert f"[^{number}]: UAR: {BOREDOM}" in md.splitlines()
    assert md.count(f"[^{number}]:") == 1  # one note for every cell with that reason
    assert "n/a: undefined on this data" in md
    source = _row(md, "ravdess (source)", "PA")
    assert "n/a" not in " ".join(source)


def test_html_cells_carry_the_reason(results_factory) -> None:
    out = table_html(_boredom(results_factory))
    assert re.search(r'<td class="na" title="UAR: no positive examples[^"]*">n/a<sup>', out)
    assert '<ul class="notes">' in out


def test_undefined_in_some_seeds_is_undefined_in_the_mean(results_factory) -> None:
    df = results_factory(seeds=(0, 1, 2), emotions=("angry",), methods=("source-only", "pa"))
    hit = (df.seed == 2) & (df.role == "target") & (df.method == "pa")
    df["dsp_note"] = np.where(hit, "only F rows in this test set: a gap needs two groups", "")
    df.loc[hit, "dsp"] = np.nan
    blocks = paper_tables(df)
    target = next(b for b in blocks if b.title == "casia (target)")
    row = dict(target.rows)["PA"]
    assert row[1] == "n/a"
    assert any("undefined in 1 of 3 runs: only F rows" in t for t in target.notes.values())


def test_missing_values_without_a_reason_are_not_averaged_away(results_factory) -> None:
    df = results_factory(seeds=(0, 1), emotions=("angry",), methods=("source-only", "pa"))
    df.loc[(df.seed == 1) & (df.method == "pa"), "deo_max"] = np.nan
    target = next(b for b in paper_tables(df) if b.title == "casia (target)")
    assert dict(target.rows)["PA"][2] == "n/a"
    assert "missing in 1 of 2 runs" in " ".join(target.notes.values())


def _with_failures(results_factory) -> pd.DataFrame:
    df = results_factory(
        seeds=(0, 1, 2), emotions=("angry", "sad"), methods=("source-only", "pa-adv")
    )
    df["status"] = "ok"
    df["reason"] = ""
    # pa-adv diverged on seed 2 (both evaluations) and on every sad seed
    bad = (df.method == "pa-adv") & ((df.seed == 2) | (df.emotion == "sad"))
    df.loc[bad, "status"] = "failed"
    df.loc[bad, "reason"] = "NaN loss at epoch 3"
    metric_cols = [c for c in df.columns if c.startswith(("uar", "dsp", "deo", "probe", "gc_"))]
    df.loc[bad, metric_cols] = np.nan
    df.loc[bad & (df.seed == 2), "uar"] = 99.0  # garbage that must not reach a mean
    return df


def test_failed_runs_are_shown_and_left_out_of_means(results_factory) -> None:
    df = _with_failures(results_factory)
    md = table_markdown(df)
    good = df[(df.method == "pa-adv") & (df.status == "ok") & (df.role == "target")]
    cells = _row(md, "casia (target)", "PA-Adv")
    mean = good[good.emotion == "angry"]["uar"].mean()
    assert cells[1].strip("*").startswith(f"{mean:.3f}") and "99" not in cells[1]
    assert re.search(r"\[\^\d+\]$", cells[1])  # the partial failure is noted on the cell
    assert cells[4].startswith("failed[^")
    assert "2 of 3 runs failed" not in md and "1 of 3 runs failed (seed 2): NaN loss" in md
    assert "all 3 runs failed (seed 0, 1, 2): NaN loss at epoch 3" in md
    assert "### Failed runs" in md and "- PA-Adv, sad, seed 0, casia: NaN loss at epoch 3" in md
    assert "Failed runs are left out of every mean" in md
    runs = failed_runs(df)
    assert len(runs) == 4 and not runs["superseded"].any()


def test_report_with_failures_nan_embeddings_and_probes(
    results_factory, embeddings, tmp_path
) -> None:
    df = _with_failures(results_factory)
    df["probe_mlp"] = 0.7
    df.loc[df.method == "source-only", "probe_note"] = "a speaker-disjoint probe needs two speakers"
    df.loc[df.method == "source-only", "probe"] = np.nan
    emb = dict(embeddings)
    emb["pa-adv"] = {
        "embeddings": np.full((40, 8), np.nan),
        "gender": np.array(["M", "F"] * 20),
        "corpus": np.array(["casia"] * 40),
    }
    half = np.asarray(emb["pa-cfa"]["embeddings"]).copy()
    half[::2] = np.inf
    emb["pa-cfa"] = {**emb["pa-cfa"], "embeddings": half}
    emb["pa"] = {**emb["pa-adv"], "embeddings": np.ones((40, 8))}
    text = write_report(df, tmp_path, embeddings=emb).read_text("utf-8")
    assert '<h2 id="failed">Failed runs</h2>' in text and "NaN loss at epoch 3" in text
    assert "MLP probe on embeddings" in text
    assert '<td class="na" title="a speaker-disjoint probe needs two speakers">n/a</td>' in text
    assert (tmp_path / "figures" / "embeddings.png").stat().st_size > 10_000


def test_report_when_every_run_failed(results_factory, tmp_path) -> None:
    df = results_factory(seeds=(0,), emotions=("angry",), methods=("pa",))
    df["status"] = "failed"
    df["reason"] = "out of memory"
    df[["uar", "dsp", "deo_max"]] = np.nan
    text = write_report(df, tmp_path).read_text("utf-8")
    assert "No figures: no run succeeded." in text and "out of memory" in text
    assert not list(tmp_path.glob("figures/*.png"))


def test_a_failure_superseded_by_a_rerun_is_history(results_factory) -> None:
    df = results_factory(seeds=(0,), emotions=("angry",), methods=("source-only", "pa"))
    df["status"] = "ok"
    old = df[df.method == "pa"].assign(status="failed", reason="killed", uar=np.nan)
    md = table_markdown(pd.concat([df, old]))
    assert "failed[^" not in md and "(a later rerun succeeded)" in md


def test_labels_and_order_come_from_the_method_registry(results_factory) -> None:
    assert method_order()[2:] == tuple(fairser.methods.METHODS)
    for name in fairser.methods.METHODS:
        assert method_label(name) == fairser.methods.method_label(name)
    assert method_label("linear-baseline") == "Linear baseline"
    assert method_label("linear-probe") == "Linear probe"
    assert method_label("my-method", "a=1") == "my-method (a=1)"
    df = results_factory(
        seeds=(0,), emotions=("angry",), methods=("pa-cfa", "linear-baseline", "pa")
    )
    labels = [label for label, _ in paper_tables(df)[0].rows]
    assert labels == ["Linear baseline", "PA", "PA-CFA"]


@pytest.mark.parametrize("with_task", [True, False])
def test_multiclass_run_is_tabulated(results_factory, with_task: bool) -> None:
    df = results_factory(seeds=(0, 1), emotions=("all",), methods=("source-only", "pa"))
    if with_task:
        df["task"] = "multiclass"
        df["class_average"] = "max"
        df["n_classes"] = 4
    md = table_markdown(df)
    assert "| Method | all UAR | all dSP | all dEO |" in md
    how = "the worst class (max)" if with_task else "the mean over classes (macro)"
    assert f"dSP and dEO are one-vs-rest per class, reduced by {how}" in md
