"""Paired-test tables (Markdown/HTML) and their section in the report."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.report import ReportError, comparison_html, comparison_markdown, write_report


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
