"""The paper-layout table: blocks, order, aggregation over seeds, spreads, bolding, errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fairser.errors import FairserError
from fairser.report import ReportError, paper_tables, table_html, table_markdown


def _block(md: str, title: str) -> list[str]:
    lines = md.splitlines()
    start = lines.index(f"### {title}")
    out = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        out.append(line)
    return out


def test_layout_blocks_rows_columns(results) -> None:
    md = table_markdown(results)
    headings = [line for line in md.splitlines() if line.startswith("### ")]
    assert headings == ["### ravdess (source)", "### casia (target)"]
    block = _block(md, "casia (target)")
    header = [c.strip() for c in block[0].strip("|").split("|")]
    assert header[0] == "Method"
    assert header[1:4] == ["angry UAR", "angry dSP", "angry dEO"]
    assert len(header) == 1 + 4 * 3
    labels = [row.split("|")[1].strip() for row in block[2:]]
    assert labels == ["Source-only", "PA", "PA-ReW", "PA-FairW", "PA-Adv", "PA-CFA"]


def test_cells_are_seed_means_with_sd(results) -> None:
    part = results[
        (results.method == "pa-adv") & (results.emotion == "sad") & (results.role == "target")
    ]
    mean, sd = part["dsp"].mean(), part["dsp"].std(ddof=1)
    md = table_markdown(results)
    row = next(r for r in _block(md, "casia (target)") if r.startswith("| PA-Adv "))
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    sad_dsp = cells[1 + 2 * 3 + 1]
    assert sad_dsp == f"{mean:.3f} ± {sd:.3f}"
    assert "Mean over 3 seeds" in md


def test_single_seed_shows_bootstrap_interval(results_factory) -> None:
    df = results_factory(seeds=(0,))
    md = table_markdown(df, digits=2)
    first = _block(md, "casia (target)")[2]
    cell = first.split("|")[2].strip().strip("*")
    assert re.fullmatch(r"0\.\d\d \[0\.\d\d, 0\.\d\d\]", cell), cell
    assert "95% interval" in md
    assert "±" not in table_markdown(df, spread="ci")
    plain = table_markdown(df, spread="none").split("|")
    assert not any("[" in c for c in plain)


def test_best_value_per_column_is_bold(results) -> None:
    block = _block(table_markdown(results), "ravdess (source)")
    # dSP falls with every method in the fake results: PA-CFA is the fairest, source-only
    # the most accurate.
    cfa = block[-1].split("|")
    src = block[2].split("|")
    assert cfa[1].strip() == "PA-CFA" and cfa[3].strip().startswith("**")
    assert src[2].strip().startswith("**") and not src[3].strip().startswith("**")


def test_sweep_points_and_conditions_get_rows_and_blocks(results_factory) -> None:
    df = results_factory(
        sweep={"pa-cfa": [0.1, 1.0]}, conditions=("balanced", "imbalanced"), seeds=(0,)
    )
    blocks = paper_tables(df)
    titles = [b.title for b in blocks]
    assert titles == [
        "ravdess (source), condition balanced",
        "casia (target), condition balanced",
        "ravdess (source), condition imbalanced",
        "casia (target), condition imbalanced",
    ]
    labels = [label for label, _ in blocks[0].rows]
    assert labels[-2:] == ["PA-CFA (alpha=0.1)", "PA-CFA (alpha=1.0)"]


def test_source_blocks_name_their_target_when_there_are_several(results_factory) -> None:
    df = pd.concat([results_factory(target="casia"), results_factory(target="emodb")])
    titles = [b.title for b in paper_tables(df)]
    assert "ravdess (source), target casia" in titles
    assert "emodb (target)" in titles and len(titles) == 4


def test_missing_values_and_unknown_methods(results_factory) -> None:
    df = results_factory(methods=("source-only", "my-method"), seeds=(0,), with_ci=False)
    df.loc[df.method == "my-method", "deo_max"] = np.nan
    md = table_markdown(df)
    row = next(r for r in _block(md, "casia (target)") if r.startswith("| my-method"))
    assert row.split("|")[4].strip() == "–"


def test_reads_csv_path(results, tmp_path) -> None:
    path = tmp_path / "results.csv"
    results.to_csv(path, index=False)
    assert table_markdown(path) == table_markdown(results)


def test_html_table_spans_emotions_and_escapes(results_factory) -> None:
    df = results_factory(methods=("source-only", "<b>x</b>"), seeds=(0,))
    out = table_html(df)
    assert out.count('colspan="3"') == 2 * 4
    assert "<b>x</b>" not in out and "&lt;b&gt;x&lt;/b&gt;" in out
    assert 'class="best"' in out


@pytest.mark.parametrize(
    ("mutate", "kwargs", "fragment"),
    [
        (lambda d: d.drop(columns=["role"]), {}, "missing column(s) ['role']"),
        (lambda d: d.iloc[:0], {}, "no rows"),
        (lambda d: pd.concat([d, d.iloc[:1]]), {}, "describe the same run"),
        (lambda d: d, {"metrics": ("accuracy",)}, "unknown"),
        (lambda d: d, {"spread": "iqr"}, "spread='iqr'"),
    ],
)
def test_bad_input(results, mutate, kwargs, fragment) -> None:
    with pytest.raises(ReportError) as info:
        table_markdown(mutate(results), **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, FairserError)


def test_unreadable_file_names_it(tmp_path) -> None:
    bad = tmp_path / "results.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ReportError, match=r"results.parquet: cannot read results"):
        table_markdown(bad)
