"""Figures: each writes a non-empty PNG of sensible size; Pareto front; input checks."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from fairser.report import (
    ReportError,
    has_sweep,
    plot_embeddings,
    plot_fairness_gap,
    plot_fairness_vs_uar,
    plot_pareto,
    plot_recall_by_gender,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, *, min_w: int = 400, min_h: int = 250) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    img = imread(path)
    assert img.shape[1] >= min_w and img.shape[0] >= min_h
    # not a blank canvas: plenty of non-white pixels
    assert (img[..., :3] < 0.9).any(axis=-1).mean() > 0.02
    return img


def test_fairness_vs_uar_png(results_factory, tmp_path) -> None:
    df = results_factory(seeds=(0,), sweep={"pa-cfa": [0.1, 1.0]})
    out = plot_fairness_vs_uar(df, tmp_path / "f.png", fairness=("dsp",))
    assert out == tmp_path / "f.png"
    _check_png(out)
    assert not list(tmp_path.glob(".*.tmp"))


def test_recall_by_gender_png(results, tmp_path) -> None:
    _check_png(plot_recall_by_gender(results, tmp_path / "r.png"))


def test_fairness_gap_png_and_needs_both_roles(results, tmp_path) -> None:
    _check_png(plot_fairness_gap(results, tmp_path / "g.png"))
    with pytest.raises(ReportError, match="needs rows of both 'source' and 'target'"):
        plot_fairness_gap(results[results.role == "target"], tmp_path / "x.png")


def test_embeddings_png_and_checks(embeddings, tmp_path) -> None:
    img = _check_png(plot_embeddings(embeddings, tmp_path / "e.png", max_points=200))
    assert img.shape[1] > 2.5 * img.shape[0]  # two methods side by side, four panels
    with pytest.raises(ReportError, match=r"embeddings\['a'\]: missing key\(s\) \['corpus'\]"):
        plot_embeddings(
            {"a": {"embeddings": np.zeros((5, 2)), "gender": ["M"] * 5}}, tmp_path / "x.png"
        )
    with pytest.raises(ReportError, match="disagree"):
        plot_embeddings(
            {"a": {"embeddings": np.zeros((5, 2)), "gender": ["M"] * 4, "corpus": ["c"] * 5}},
            tmp_path / "x.png",
        )
    with pytest.raises(ReportError, match="empty mapping"):
        plot_embeddings({}, tmp_path / "x.png")


def test_pareto_png_only_with_a_sweep(results_factory, tmp_path) -> None:
    plain = results_factory(seeds=(0,))
    swept = results_factory(seeds=(0,), sweep={"pa-cfa": [0.1, 0.5, 1.0]})
    assert not has_sweep(plain) and has_sweep(swept)
    _check_png(plot_pareto(swept, tmp_path / "p.png"))
    with pytest.raises(ReportError, match="no run has a sweep point"):
        plot_pareto(plain, tmp_path / "x.png")
