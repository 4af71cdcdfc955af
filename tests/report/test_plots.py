"""Figures: each writes a non-empty PNG of sensible size; Pareto front; input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def test_tradeoff_has_a_panel_per_gap_and_survives_undefined_points(results_factory, tmp_path):
    df = results_factory(seeds=(0, 1), sweep={"pa-cfa": [0.1, 1.0]}, emotions=("angry", "sad"))
    both = _check_png(plot_pareto(df, tmp_path / "both.png"))
    one = _check_png(plot_pareto(df, tmp_path / "one.png", fairness=("dsp",)))
    assert both.shape[1] > 1.6 * one.shape[1]
    # a configuration whose UAR is undefined everywhere is left out, not drawn at 0 or NaN
    df.loc[df.method == "pa", ["uar"]] = np.nan
    df.loc[df.method == "pa", "uar_note"] = "no positive examples in this test set"
    _check_png(plot_pareto(df, tmp_path / "nan.png"))
    plain = df[df.method != "pa-cfa"]
    assert not has_sweep(plain)
    assert has_sweep(plain.assign(sweep=np.where(plain.method == "pa", "lever=0.5", "")))


def test_embeddings_degenerate_sets_get_a_panel_not_a_crash(tmp_path) -> None:
    gender = np.array(["M", "F"] * 10)
    corpus = np.array(["casia"] * 20)
    sets = {
        "nan": {"embeddings": np.full((20, 4), np.nan), "gender": gender, "corpus": corpus},
        "flat": {"embeddings": np.ones((20, 4)), "gender": gender, "corpus": corpus},
        "two": {"embeddings": np.eye(2, 4), "gender": gender[:2], "corpus": corpus[:2]},
    }
    _check_png(plot_embeddings(sets, tmp_path / "e.png"), min_h=200)


def test_tradeoff_applies_to_variants_and_sweeps_together(results_factory, tmp_path) -> None:
    from fairser.report import has_tradeoff

    plain = results_factory(seeds=(0,))
    assert not has_tradeoff(plain)
    variant = plain[plain.method == "pa"].assign(method="recommended")
    with_variant = pd.concat([plain, variant], ignore_index=True)
    assert has_tradeoff(with_variant) and not has_sweep(with_variant)
    _check_png(plot_pareto(with_variant, tmp_path / "v.png"))
    swept = results_factory(seeds=(0,), sweep={"pa-cfa": [0.1, 1.0]})
    both = pd.concat([swept, variant.assign(sweep="threshold_strength=0.5")],
                     ignore_index=True)
    assert has_tradeoff(both)
    _check_png(plot_pareto(both, tmp_path / "both.png"))


@pytest.mark.parametrize("n", [3, 10, 11, 20])
def test_every_method_of_a_figure_gets_its_own_colour(n) -> None:
    from fairser.report._figure import method_colors

    colors = method_colors([f"method-{i}" for i in range(n)])
    assert len(colors) == n and len(set(colors.values())) == n


def test_known_methods_keep_their_colour_and_extra_methods_take_free_ones() -> None:
    from fairser.report._figure import method_colors

    known = ["linear-baseline", "source-only", "pa", "pa-adv", "pa-cfa"]
    extra = ["recommended", "recommended-pe", "recommended-qleace"]  # ranks 8, 9, 10
    mixed = method_colors(known + extra)
    assert len(set(mixed.values())) == len(known) + len(extra)
    alone = method_colors(known)
    assert all(mixed[m] == alone[m] for m in known)


def test_pareto_labels_never_overlap_and_the_title_counts_the_hidden(results_factory, tmp_path,
                                                                     monkeypatch) -> None:
    import fairser.report.tradeoff as tradeoff

    figures = []
    real_save = tradeoff.save
    monkeypatch.setattr(tradeoff, "save", lambda fig, path: figures.append(fig)
                        or real_save(fig, path))
    plain = results_factory(seeds=(0,))
    # twelve sweep points of one variant at (almost) the same place: their labels must collide
    variant = plain[plain.method == "pa"].assign(method="recommended")
    crowd = pd.concat(
        [variant.assign(sweep=f"threshold_strength={i / 11:.2f}", uar=variant.uar + 1e-4 * i,
                        dsp=variant.dsp - 1e-5 * i)
         for i in range(12)],
        ignore_index=True,
    )
    _check_png(plot_pareto(pd.concat([plain, crowd], ignore_index=True), tmp_path / "c.png"))
    fig = figures[-1]
    assert "label(s) hidden where they overlapped another label" in fig.get_suptitle()
    r = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if "=" in t.get_text() or t.get_text() in
                  {"source-only", "pa", "pa-cfa", "pa-adv", "pa-rew", "pa-fairw", "recommended"}]
        shown = [t for t in labels if t.get_visible()]
        assert 0 < len(shown) < len(labels)
        assert any(t.get_fontweight() == "bold" for t in shown)  # the front is labelled
        boxes = [t.get_window_extent(r) for t in shown]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        # a front label moved to clear another stays within a few lines of its point
        assert all(t.xyann[1] >= 4 - 3 * 9 for t in shown)
    # nothing to hide -> the plain title
    figures.clear()
    plot_pareto(pd.concat([plain, variant], ignore_index=True), tmp_path / "v.png")
    assert "hidden" not in figures[-1].get_suptitle()
