"""Paired-test tables (Markdown/HTML) and their section in the report."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.report import (
    ReportError,
    comparison_html,
    comparison_markdown,
    gap_null_html,
    gap_null_markdown,
    write_report,
)


def _comparisons() -> pd.DataFrame:
    rows = []
    for method, sweep, d, p in [
        ("pa-cfa", "", -0.08, 0.004),
        ("pa", "", -0.01, 0.62),
        ("pa-cfa", "alpha=1", -0.1, float("nan")),
    ]:
        for emotion in ("angry", "sad"):
            for metric in ("uar", "dsp"):
                rows.append(
                    {
                        "corpus": "casia",
                        "role": "target",
                        "emotion": emotion,
                        "method": method,
                        "sweep": sweep,
                        "baseline": "source-only",
                        "metric": metric,
                        "a": 0.5,
                        "b": 0.5,
                        "difference": d,
                        "lo": d - 0.05,
                        "hi": d + 0.05,
                        "p_value": p,
                        "runs_a": 3,
                        "runs_b": 3,
                    }
                )
    return pd.DataFrame(rows)


def test_markdown_layout_order_and_stars() -> None:
    md = comparison_markdown(_comparisons())
    lines = md.splitlines()
    assert lines[0].startswith("Difference to Source-only (method minus baseline)")
    assert "### casia (target)" in lines
    header = next(line for line in lines if line.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Method",
        "angry ΔUAR",
        "angry ΔdSP",
        "sad ΔUAR",
        "sad ΔdSP",
    ]
    body = [line for line in lines if line.startswith("| P")]
    assert [b.split("|")[1].strip() for b in body] == ["PA", "PA-CFA", "PA-CFA (alpha=1)"]
    assert "-0.080 (p=0.004) *" in body[1] and "*" not in body[0]
    assert "(p=–)" in body[2]


def test_html_highlights_significant_cells() -> None:
    out = comparison_html(_comparisons())
    assert out.count('class="best"') == 4  # pa-cfa: 2 emotions x 2 metrics
    assert "p &lt; 0.05" in out and "PA-CFA (alpha=1)" in out


def test_missing_columns() -> None:
    with pytest.raises(ReportError, match=r"missing column\(s\) \['p_value'\]"):
        comparison_markdown(_comparisons().drop(columns=["p_value"]))


def test_report_gets_a_paired_section(results_factory, tmp_path) -> None:
    df = results_factory(seeds=(0,), emotions=("angry", "sad"), methods=("source-only", "pa"))
    df = df[df.role == "target"]
    with_tests = write_report(df, tmp_path / "a", comparisons=_comparisons()).read_text("utf-8")
    without = write_report(df, tmp_path / "b").read_text("utf-8")
    assert '<h2 id="paired">Paired tests</h2>' in with_tests
    assert "Paired tests" not in without


def _gap_nulls(n_assignments: int = 6, min_p: float = 1 / 3, exact: bool = True) -> pd.DataFrame:
    rows = []
    for role, corpus in (("source", "ravdess"), ("target", "casia")):
        for method, p in (("pa", 0.333), ("recommended", 0.02)):
            for metric in ("dsp", "deo_max"):
                rows.append({"corpus": corpus, "role": role, "emotion": "angry",
                             "method": method, "sweep": "", "metric": metric,
                             "estimate": 0.126, "permuted_mean": 0.094, "permuted_hi": 0.13,
                             "p_value": p, "fair_mean": 0.064, "fair_hi": 0.09,
                             "min_p": min_p, "n_assignments": n_assignments, "exact": exact,
                             "runs": 5})
    return pd.DataFrame(rows)


def test_gap_null_tables_say_what_few_speakers_cannot_show() -> None:
    md = gap_null_markdown(_gap_nulls())
    assert "### casia (target) (6 speaker assignments, smallest possible p 0.33)" in md
    assert "0.126 (reassigned 0.094, p=0.33; fair 0.064)" in md
    assert "no p-value can fall below 0.33" in md
    many = gap_null_markdown(_gap_nulls(n_assignments=999, min_p=0.001, exact=False))
    assert "cannot be shown" not in many and "speaker assignments" not in many
    out = gap_null_html(_gap_nulls(n_assignments=999, min_p=0.001, exact=False))
    assert out.count('class="best"') == 4  # recommended: p 0.02 < 0.05 in both roles x 2 gaps
    with pytest.raises(ReportError, match=r"missing column\(s\) \['fair_mean'\]"):
        gap_null_markdown(_gap_nulls().drop(columns=["fair_mean"]))


def test_report_gets_a_gap_section_with_target_rows_only(results_factory, tmp_path) -> None:
    df = results_factory(seeds=(0,), emotions=("angry",), methods=("source-only", "pa"))
    page = write_report(df, tmp_path / "a", gap_nulls=_gap_nulls()).read_text("utf-8")
    assert '<h2 id="gaps">Are the gaps about gender?</h2>' in page
    section = page.split('id="gaps"')[1].split("<h2")[0]
    assert "casia (target)" in section and "ravdess" not in section
    assert "Are the gaps" not in write_report(df, tmp_path / "b").read_text("utf-8")
