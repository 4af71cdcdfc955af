"""write_report: files on disk, a self-contained page that references every figure."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from fairser.report import FIGURES, ReportError, write_report


class _TagChecker(HTMLParser):
    """Records tags closed out of order (void elements excepted)."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.errors.append(tag)


def test_writes_report_with_every_figure(results_factory, embeddings, tmp_path) -> None:
    df = results_factory(seeds=(0, 1), emotions=("angry", "sad"), sweep={"pa-cfa": [0.1, 1.0]})
    meta = {"command": "fairser run cfg.yaml <&>", "wall_s": 12.5, "versions": {"torch": "2.13.0"}}
    page = write_report(
        df, tmp_path / "run", embeddings=embeddings, title="RAVDESS → CASIA", meta=meta
    )
    assert page == tmp_path / "run" / "report.html"
    text = page.read_text(encoding="utf-8")
    pngs = sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png"))
    assert pngs == sorted(FIGURES)
    for name in FIGURES:
        assert f'href="figures/{name}"' in text
        assert f'id="{name[:-4]}"' in text
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(embedded) == len(FIGURES)
    on_disk = {(tmp_path / "run" / "figures" / n).read_bytes() for n in FIGURES}
    assert {base64.b64decode(e) for e in embedded} == on_disk
    assert all(len(b) > 10_000 for b in on_disk)
    # offline: no external resources, no scripts
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script" not in text
    # metadata and title are shown, escaped
    assert "fairser run cfg.yaml &lt;&amp;&gt;" in text and "2.13.0" in text
    assert "<title>RAVDESS → CASIA</title>" in text
    assert "PA-CFA (alpha=0.1)" in text and "Gender detection" in text
    assert not list((tmp_path / "run").glob("**/.*.tmp"))
    checker = _TagChecker()
    checker.feed(text)
    assert checker.errors == [] and checker.stack == []


def test_leaves_out_figures_that_do_not_apply(results_factory, tmp_path) -> None:
    df = results_factory(seeds=(0,), emotions=("angry",), methods=("source-only", "pa"))
    df = df[df.role == "target"]
    text = write_report(df, tmp_path).read_text(encoding="utf-8")
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert pngs == ["fairness_vs_uar.png", "recall_by_gender.png"]
    assert "fairness_gap.png" not in text and "embeddings.png" not in text


def test_rerun_overwrites_in_place(results_factory, tmp_path) -> None:
    df = results_factory(seeds=(0,), emotions=("angry",), methods=("source-only",))
    df = df[df.role == "target"]
    first = write_report(df, tmp_path, title="one").read_text(encoding="utf-8")
    second = write_report(df, tmp_path, title="two").read_text(encoding="utf-8")
    assert "<h1>one</h1>" in first and "<h1>two</h1>" in second


def test_missing_metric_column_is_reported(results, tmp_path) -> None:
    with pytest.raises(ReportError, match=r"missing column\(s\) \['uar_f'\]"):
        write_report(results.drop(columns=["uar_f"]), tmp_path)
    assert not (tmp_path / "report.html").exists()
