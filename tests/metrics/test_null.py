"""gap_null / gap_nulls: speaker-permutation test and fair-classifier reference of the gaps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from fairser.metrics import (
    NULL_COLUMNS,
    MetricError,
    equalized_odds_difference,
    gap_null,
    gap_nulls,
    speaker_bootstrap,
)

FAIRNESS = ["dsp", "tpr_gap", "fpr_gap", "deo_max", "deo_sum"]


def test_table_shape_and_estimate_matches_the_point_metrics(binary_set):
    t = gap_null(
        binary_set.y_true,
        binary_set.y_pred,
        sensitive_features=binary_set.gender,
        speakers=binary_set.speaker,
        n_resamples=200,
    )
    assert list(t.index) == FAIRNESS
    assert list(t.columns) == list(NULL_COLUMNS)
    boot = speaker_bootstrap(
        binary_set.y_true,
        binary_set.y_pred,
        sensitive_features=binary_set.gender,
        speakers=binary_set.speaker,
        n_boot=0,
    )
    for name in FAIRNESS:
        assert t.loc[name, "estimate"] == pytest.approx(boot.estimate[name])
    assert t.loc["deo_max", "estimate"] == pytest.approx(
        equalized_odds_difference(
            binary_set.y_true, binary_set.y_pred, sensitive_features=binary_set.gender
        )
    )


def test_four_speakers_enumerate_all_six_assignments_by_hand():
    # speakers a, b male; c, d female; two rows each, one positive and one negative.
    y = [1, 0, 1, 0, 1, 0, 1, 0]
    p = [1, 0, 1, 0, 0, 0, 0, 0]  # a and b find their positive, c and d do not
    t = gap_null(y, p, sensitive_features=list("MMMMFFFF"), speakers=list("aabbccdd"))
    row = t.loc["tpr_gap"]
    assert row["exact"] and row["n_assignments"] == 6
    assert row["min_p"] == pytest.approx(2 / 6)  # two genders of two speakers: mirrored pairs
    # TPR gap per assignment: {a,b} vs {c,d} and its mirror: 1; the four mixed splits: 0.
    assert row["estimate"] == 1.0
    assert row["permuted_mean"] == pytest.approx(2 / 6)
    assert row["p_value"] == pytest.approx(2 / 6)  # the real assignment and its mirror
    assert t.loc["fpr_gap", "estimate"] == 0.0
    assert t.loc["fpr_gap", "p_value"] == 1.0


def test_number_of_assignments_is_the_multinomial_for_three_groups():
    rng = np.random.default_rng(0)
    groups = np.repeat(["A", "B", "C"], [2 * 5, 3 * 5, 1 * 5])
    speakers = np.repeat([f"s{i}" for i in range(6)], 5)
    y = rng.integers(0, 2, len(groups))
    p = rng.integers(0, 2, len(groups))
    t = gap_null(y, p, sensitive_features=groups, speakers=speakers, n_resamples=50)
    assert t.loc["dsp", "exact"]
    assert t.loc["dsp", "n_assignments"] == math.comb(6, 2) * math.comb(4, 3)
    assert t.loc["dsp", "min_p"] == pytest.approx(1 / 60)


def test_a_real_gender_effect_is_found_and_a_speaker_effect_is_not(make_set):
    biased = make_set(1, n_speakers=40, utts=30, sel=(0.65, 0.35), speaker_sd=0.05)
    t = gap_null(
        biased.y_true,
        biased.y_pred,
        sensitive_features=biased.gender,
        speakers=biased.speaker,
        n_resamples=499,
    )
    assert not t.loc["dsp", "exact"]
    assert t.loc["dsp", "p_value"] == pytest.approx(1 / 500)  # add-one: none as large
    assert t.loc["dsp", "estimate"] > t.loc["dsp", "permuted_hi"]
    # Large speaker differences, no gender effect: the gap is typical of reassignments.
    spk = make_set(2, n_speakers=40, utts=30, sel=(0.5, 0.5), speaker_sd=0.2)
    t2 = gap_null(
        spk.y_true, spk.y_pred, sensitive_features=spk.gender, speakers=spk.speaker,
        n_resamples=499,
    )
    assert t2.loc["dsp", "p_value"] > 0.05
    assert t2.loc["dsp", "estimate"] <= t2.loc["dsp", "permuted_hi"]


def test_fair_reference_matches_the_normal_approximation():
    # 2 x 100 positives and 2 x 300 negatives, pooled TPR 0.6 and FPR 0.2, no group effect:
    # |TPR_M - TPR_F| has mean sigma * sqrt(2 / pi), sigma = sqrt(2 * 0.6 * 0.4 / 100).
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(100), np.zeros(300), np.ones(100), np.zeros(300)].astype(int)
    g = np.repeat(["M", "F"], 400)
    spk = np.repeat(["m1", "m2", "f1", "f2"], 200)
    p = np.where(y == 1, rng.random(800) < 0.6, rng.random(800) < 0.2).astype(int)
    t = gap_null(y, p, sensitive_features=g, speakers=spk, n_resamples=4000, seed=1)
    tpr = p[y == 1].mean()
    sigma = math.sqrt(2 * tpr * (1 - tpr) / 100)
    assert t.loc["tpr_gap", "fair_mean"] == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.1)
    assert t.loc["tpr_gap", "fair_hi"] == pytest.approx(1.96 * sigma, rel=0.1)
    assert t.loc["deo_max", "fair_mean"] >= t.loc["tpr_gap", "fair_mean"]


def test_runs_average_like_the_bootstrap_and_the_seed_fixes_the_table(binary_set):
    rng = np.random.default_rng(9)
    second = np.where(rng.random(len(binary_set.y_pred)) < 0.2, 1 - binary_set.y_pred,
                      binary_set.y_pred)
    runs = np.stack([binary_set.y_pred, second])
    kw = dict(sensitive_features=binary_set.gender, speakers=binary_set.speaker, n_resamples=100)
    t = gap_null(binary_set.y_true, runs, **kw)
    one = gap_null(binary_set.y_true, binary_set.y_pred, **kw)
    two = gap_null(binary_set.y_true, second, **kw)
    assert t.loc["dsp", "estimate"] == pytest.approx(
        (one.loc["dsp", "estimate"] + two.loc["dsp", "estimate"]) / 2
    )
    pd.testing.assert_frame_equal(t, gap_null(binary_set.y_true, runs, **kw))
    assert not t.equals(gap_null(binary_set.y_true, runs, **kw, seed=1))


def test_max_exact_zero_samples_instead(make_set):
    s = make_set(4, n_speakers=4, utts=20)
    t = gap_null(s.y_true, s.y_pred, sensitive_features=s.gender, speakers=s.speaker,
                 n_resamples=30, max_exact=0)
    assert not t.loc["dsp", "exact"] and t.loc["dsp", "n_assignments"] == 30
    assert t.loc["dsp", "min_p"] == pytest.approx(1 / 31)


def test_multiclass_gaps(make_set):
    s = make_set(6, n_classes=3)
    t = gap_null(s.y_true, s.y_pred, sensitive_features=s.gender, speakers=s.speaker,
                 n_resamples=50)
    assert np.isfinite(t["estimate"]).all() and np.isfinite(t["fair_mean"]).all()


def test_one_group_only_gives_nan_not_a_number_that_looks_valid():
    t = gap_null([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=list("MMMM"),
                 speakers=list("aabb"), group_order=("M", "F"))
    assert t["estimate"].isna().all() and t["p_value"].isna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_resamples": 0}, "n_resamples=0"),
        ({"max_exact": -1}, "max_exact=-1"),
        ({"confidence": 1.0}, "confidence=1.0"),
        ({"average": "mean"}, "average"),
    ],
)
def test_bad_options_are_one_line_errors(binary_set, kwargs, message):
    with pytest.raises(MetricError, match=message):
        gap_null(binary_set.y_true, binary_set.y_pred, sensitive_features=binary_set.gender,
                 speakers=binary_set.speaker, **kwargs)


def _predictions(s, method: str, seed: int) -> pd.DataFrame:
    return pd.DataFrame({
        "method": method, "seed": seed, "emotion": "angry", "role": "target",
        "utt_id": [f"u{i}" for i in range(len(s.y_true))], "speaker": s.speaker,
        "gender": s.gender, "y_true": s.y_true, "y_pred": s.y_pred,
    })


def test_gap_nulls_over_a_predictions_table(binary_set, make_set):
    other = make_set(3, sel=(0.5, 0.5), speaker_sd=0.05)
    other = type(other)(y_true=binary_set.y_true, y_pred=other.y_pred, gender=binary_set.gender,
                        speaker=binary_set.speaker)
    table = pd.concat([
        _predictions(binary_set, "pa", 0), _predictions(binary_set, "pa", 1),
        _predictions(other, "recipe", 0),
    ])
    out = gap_nulls(table, n_resamples=100)
    assert list(out.columns) == ["role", "emotion", "method", "sweep", "metric",
                                 *NULL_COLUMNS, "runs"]
    assert len(out) == 4  # 2 methods x dsp, deo_max
    pa = out[(out.method == "pa") & (out.metric == "dsp")].iloc[0]
    assert pa["runs"] == 2
    direct = gap_null(binary_set.y_true, binary_set.y_pred, sensitive_features=binary_set.gender,
                      speakers=binary_set.speaker, n_resamples=100)
    assert pa["estimate"] == pytest.approx(direct.loc["dsp", "estimate"])
    assert pa["p_value"] == pytest.approx(direct.loc["dsp", "p_value"])


def test_gap_nulls_errors_name_the_fix(binary_set):
    table = _predictions(binary_set, "pa", 0)
    with pytest.raises(MetricError, match="missing column"):
        gap_nulls(table.drop(columns="speaker"))
    with pytest.raises(MetricError, match="not among"):
        gap_nulls(table, metrics=["uar"])
    with pytest.raises(MetricError, match="not in the predictions"):
        gap_nulls(table, by=["target"])


def _four_speakers(rng, *, tpr_by_speaker, n_pos=100, n_neg=300):
    """Rows of speakers m1, m2 (M), f1, f2 (F): per speaker n_pos positives, n_neg negatives."""
    y, p, g, spk = [], [], [], []
    for name, tpr in tpr_by_speaker.items():
        yy = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
        y.append(yy)
        p.append(np.where(yy == 1, rng.random(yy.size) < tpr, rng.random(yy.size) < 0.2))
        g.append(np.repeat(name[0].upper(), yy.size))
        spk.append(np.repeat(name, yy.size))
    return (np.concatenate(y), np.concatenate(p).astype(int), np.concatenate(g),
            np.concatenate(spk))


def test_fair_p_flags_error_rates_that_differ_and_the_reference_is_not_a_floor():
    rng = np.random.default_rng(3)
    fair = _four_speakers(rng, tpr_by_speaker={"m1": .6, "m2": .6, "f1": .6, "f2": .6})
    unfair = _four_speakers(rng, tpr_by_speaker={"m1": .8, "m2": .8, "f1": .5, "f2": .5})
    kw = dict(n_resamples=2000, seed=2)
    t_fair = gap_null(fair[0], fair[1], sensitive_features=fair[2], speakers=fair[3], **kw)
    t_unfair = gap_null(unfair[0], unfair[1], sensitive_features=unfair[2],
                        speakers=unfair[3], **kw)
    row = t_fair.loc["tpr_gap"]
    assert row["fair_lo"] < row["fair_mean"] < row["fair_hi"]
    assert row["fair_lo"] < 0.02  # a fair classifier often measures far less than the mean
    assert row["fair_p"] > 0.05
    assert t_unfair.loc["tpr_gap", "fair_p"] < 0.01  # 0.3 apart is far beyond row noise
    # ... but with 2 + 2 speakers no reassignment test can call it a gender effect
    assert t_unfair.loc["tpr_gap", "p_value"] >= 2 / 6


def _table(sets, *, emotions, method="recipe"):
    parts = []
    for (y, p, g, spk), emo in zip(sets, emotions, strict=True):
        parts.append(pd.DataFrame({"method": method, "seed": 0, "emotion": emo,
                                   "role": "target", "utt_id": [f"u{i}" for i in range(len(y))],
                                   "speaker": spk, "gender": g, "y_true": y, "y_pred": p}))
    return pd.concat(parts, ignore_index=True)


def test_the_pooled_row_is_the_mean_over_tasks_with_aligned_reassignments():
    rng = np.random.default_rng(11)
    tasks = [_four_speakers(rng, tpr_by_speaker=tprs, n_pos=30, n_neg=90) for tprs in (
        {"m1": .8, "m2": .5, "f1": .6, "f2": .5}, {"m1": .4, "m2": .7, "f1": .7, "f2": .3})]
    out = gap_nulls(_table(tasks, emotions=["angry", "sad"]), n_resamples=3000)
    per_task = out[out.emotion != "mean"].set_index(["emotion", "metric"])
    pooled = out[out.emotion == "mean"].set_index("metric")
    assert list(pooled.index) == ["dsp", "deo_max"]
    for metric in ("dsp", "deo_max"):
        assert pooled.loc[metric, "estimate"] == pytest.approx(
            per_task.xs(metric, level="metric")["estimate"].mean())
    # the exact p-value of the mean, by hand: relabel the speakers' genders (6 ways), average
    # the two tasks' deo_max under each relabelling, count those at least the observed one
    names = ["m1", "m2", "f1", "f2"]
    means = []
    for males in itertools.combinations(names, 2):
        gaps = [gap_null(y, p, sensitive_features=np.where(np.isin(spk, males), "M", "F"),
                         speakers=spk, n_resamples=1).loc["deo_max", "estimate"]
                for y, p, _, spk in tasks]
        means.append(np.mean(gaps))
    observed = pooled.loc["deo_max", "estimate"]
    assert pooled.loc["deo_max", "p_value"] == pytest.approx(
        np.mean(np.array(means) >= observed - 1e-12))
    assert pooled.loc["deo_max", "permuted_mean"] == pytest.approx(np.mean(means))
    # independent fair simulations: the spread of the mean is narrower than each task's
    width = pooled.loc["deo_max", "fair_hi"] - pooled.loc["deo_max", "fair_lo"]
    task_widths = (per_task.xs("deo_max", level="metric")["fair_hi"]
                   - per_task.xs("deo_max", level="metric")["fair_lo"])
    assert width < 0.85 * task_widths.mean()


def test_pooling_without_shared_speakers_keeps_the_fair_reference_only():
    rng = np.random.default_rng(4)
    a = _four_speakers(rng, tpr_by_speaker={"m1": .6, "m2": .6, "f1": .6, "f2": .6}, n_pos=20)
    b = _four_speakers(rng, tpr_by_speaker={"m3": .6, "m4": .6, "f3": .6, "f4": .6,
                                            "f5": .6}, n_pos=20)
    out = gap_nulls(_table([a, b], emotions=["angry", "sad"]), n_resamples=200)
    pooled = out[out.emotion == "mean"]
    assert len(pooled) == 2
    assert pooled["p_value"].isna().all() and pooled["permuted_mean"].isna().all()
    assert np.isfinite(pooled["fair_mean"]).all() and np.isfinite(pooled["fair_p"]).all()
    assert not (gap_nulls(_table([a, b], emotions=["angry", "sad"]), n_resamples=20,
                          pool=None).emotion == "mean").any()
    with pytest.raises(MetricError, match="pool='speaker' is not a grouping column"):
        gap_nulls(_table([a], emotions=["angry"]), pool="speaker")


def test_pooling_needs_the_same_speakers_not_just_the_same_gender_pattern():
    rng = np.random.default_rng(8)
    a = _four_speakers(rng, tpr_by_speaker={"m1": .8, "m2": .5, "f1": .6, "f2": .5}, n_pos=20)
    b = _four_speakers(rng, tpr_by_speaker={"m3": .4, "m4": .7, "f3": .7, "f4": .3}, n_pos=20)
    out = gap_nulls(_table([a, b], emotions=["angry", "sad"]), n_resamples=200)
    pooled = out[out.emotion == "mean"]
    assert pooled["p_value"].isna().all() and pooled["permuted_mean"].isna().all()


def test_a_tasks_table_does_not_depend_on_the_other_rows_passed():
    rng = np.random.default_rng(9)
    a = _four_speakers(rng, tpr_by_speaker={"m1": .8, "m2": .5, "f1": .6, "f2": .5}, n_pos=20)
    b = _four_speakers(rng, tpr_by_speaker={"m1": .4, "m2": .7, "f1": .7, "f2": .3}, n_pos=20)
    both = gap_nulls(_table([a, b], emotions=["angry", "sad"]), n_resamples=300)
    alone = gap_nulls(_table([b], emotions=["sad"]), n_resamples=300)
    pd.testing.assert_frame_equal(both[both.emotion == "sad"].reset_index(drop=True),
                                  alone.reset_index(drop=True))
