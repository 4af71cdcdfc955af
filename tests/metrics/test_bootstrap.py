"""Speaker bootstrap: agreement with point metrics, known answers, coverage, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fairser import metrics as fm
from fairser.metrics import MetricError


def _boot(ts, **kw):
    return fm.speaker_bootstrap(
        ts.y_true, ts.y_pred, sensitive_features=ts.gender, speakers=ts.speaker, **kw
    )


def test_estimates_equal_point_metrics(binary_set) -> None:
    ts = binary_set
    res = _boot(ts, n_boot=200)
    kw = {"sensitive_features": ts.gender}
    assert res.estimate["uar"] == pytest.approx(fm.unweighted_average_recall(ts.y_true, ts.y_pred))
    assert res.estimate["dsp"] == pytest.approx(
        fm.demographic_parity_difference(ts.y_true, ts.y_pred, **kw)
    )
    assert res.estimate["deo_max"] == pytest.approx(
        fm.equalized_odds_difference(ts.y_true, ts.y_pred, **kw)
    )
    assert res.estimate["deo_sum"] == pytest.approx(
        fm.equalized_odds_difference(ts.y_true, ts.y_pred, agg="sum", **kw)
    )
    rec = fm.recall_by_group(ts.y_true, ts.y_pred, **kw)
    assert res.estimate["uar_m"] == pytest.approx(rec["M"])
    assert res.estimate["uar_f"] == pytest.approx(rec["F"])
    assert list(res.samples.columns) == list(fm.metric_names(["F", "M"]))
    assert res.n_boot == 200 and res.n_speakers == {"F": 10, "M": 10}
    for name in res.estimate:
        assert res.lo[name] <= res.hi[name]


def test_deo_is_bootstrapped_jointly(binary_set) -> None:
    s = _boot(binary_set, n_boot=300).samples
    np.testing.assert_allclose(s["deo_max"], np.fmax(s["tpr_gap"], s["fpr_gap"]))
    np.testing.assert_allclose(s["deo_sum"], s["tpr_gap"] + s["fpr_gap"])


def test_same_seed_same_intervals_other_seed_differs(binary_set) -> None:
    a, b, c = (_boot(binary_set, n_boot=100, seed=s) for s in (7, 7, 8))
    assert a.to_dict() == b.to_dict()
    assert not a.samples.equals(c.samples)


def test_speakers_are_resampled_within_gender() -> None:
    # Every female speaker is always predicted 1, every male speaker 0: if a resample could
    # drop a gender or mix their counts, dSP would leave 1 or become undefined.
    n = 12 * 5
    gender = np.repeat(np.array(["F", "M"] * 6), 5)
    speaker = np.repeat(np.arange(12), 5).astype(str)
    y_pred = (gender == "F").astype(int)
    y_true = np.tile([0, 1, 0, 1, 1], 12)
    res = fm.speaker_bootstrap(
        y_true, y_pred, sensitive_features=gender, speakers=speaker, n_boot=500
    )
    assert n == len(y_true)
    np.testing.assert_array_equal(res.samples["dsp"], 1.0)


def test_utterances_of_a_speaker_move_together() -> None:
    # Two speakers per gender: each resample can only hold 0, 1 or 2 copies of a speaker,
    # so UAR of the males takes at most three distinct values.
    gender = np.repeat(["M", "M", "F", "F"], 10)
    speaker = np.repeat(["a", "b", "c", "d"], 10)
    y_true = np.tile([1, 0], 20)
    y_pred = np.concatenate([np.tile([1, 0], 5), np.ones(10, int), np.tile([1, 0], 10)])
    res = fm.speaker_bootstrap(
        y_true, y_pred, sensitive_features=gender, speakers=speaker, n_boot=400
    )
    assert set(np.round(res.samples["uar_m"], 6)) == {0.5, 0.75, 1.0}


def test_interval_covers_true_gap_in_a_constructed_population(make_set) -> None:
    # Speakers' selection probabilities scatter around 0.6 (M) and 0.4 (F): the population
    # dSP is 0.2. 95% intervals must cover it in about 95% of independent test sets.
    covered = []
    for seed in range(120):
        ts = make_set(seed, n_speakers=24, utts=20, sel=(0.6, 0.4), speaker_sd=0.08)
        res = _boot(ts, n_boot=400, seed=seed)
        covered.append(res.lo["dsp"] <= 0.2 <= res.hi["dsp"])
    assert 0.87 <= np.mean(covered) <= 0.995


def test_utterance_level_intervals_would_be_too_narrow(make_set) -> None:
    # With a strong speaker effect, treating each utterance as its own speaker must give a
    # narrower interval than resampling speakers: the test fails if speakers were ignored.
    ts = make_set(2, n_speakers=20, utts=30, sel=(0.6, 0.4), speaker_sd=0.2)
    by_speaker = _boot(ts, n_boot=400)
    by_utt = fm.speaker_bootstrap(
        ts.y_true,
        ts.y_pred,
        sensitive_features=ts.gender,
        speakers=np.arange(ts.y_true.size),
        n_boot=400,
    )
    width = lambda r: r.hi["dsp"] - r.lo["dsp"]  # noqa: E731
    assert width(by_speaker) > 1.5 * width(by_utt)


def test_thousand_resamples_of_thousand_utterances_under_a_second() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    gender = rng.choice(["M", "F"], n)
    speaker = np.char.add(gender, rng.integers(0, 30, n).astype(str))
    y_true, y_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    start = time.perf_counter()
    fm.speaker_bootstrap(y_true, y_pred, sensitive_features=gender, speakers=speaker)
    assert time.perf_counter() - start < 1.0


def test_multiclass_bootstrap_matches_point_metrics() -> None:
    rng = np.random.default_rng(4)
    n = 600
    gender = np.repeat(["M", "F"], n // 2)
    speaker = np.repeat(np.arange(20), n // 20).astype(str)
    y_true = rng.integers(0, 4, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, 4, n))
    for average in ("macro", "max"):
        res = fm.speaker_bootstrap(
            y_true,
            y_pred,
            sensitive_features=gender,
            speakers=speaker,
            n_boot=50,
            average=average,
        )
        assert res.estimate["dsp"] == pytest.approx(
            fm.demographic_parity_difference(
                y_true, y_pred, sensitive_features=gender, average=average
            )
        )


def test_no_resamples_gives_nan_bounds(binary_set) -> None:
    res = _boot(binary_set, n_boot=0)
    assert res.n_boot == 0 and np.isnan(res.lo["uar"]) and not np.isnan(res.estimate["uar"])


def test_paired_identical_predictions_difference_zero_p_one(binary_set) -> None:
    ts = binary_set
    out = fm.paired_bootstrap_test(
        ts.y_true,
        ts.y_pred,
        ts.y_pred.copy(),
        sensitive_features=ts.gender,
        speakers=ts.speaker,
        n_boot=300,
    )
    np.testing.assert_array_equal(out["difference"], 0.0)
    np.testing.assert_array_equal(out["lo"], 0.0)
    np.testing.assert_array_equal(out["hi"], 0.0)
    np.testing.assert_array_equal(out["p_value"], 1.0)


def test_paired_detects_a_clearly_better_method(binary_set) -> None:
    ts = binary_set
    rng = np.random.default_rng(1)
    good = np.where(rng.random(ts.y_true.size) < 0.9, ts.y_true, 1 - ts.y_true)
    out = fm.paired_bootstrap_test(
        ts.y_true,
        good,
        ts.y_pred,
        sensitive_features=ts.gender,
        speakers=ts.speaker,
        metrics=["uar", "dsp"],
        n_boot=500,
    )
    assert list(out.index) == ["uar", "dsp"]
    row = out.loc["uar"]
    assert row["difference"] == pytest.approx(row["a"] - row["b"])
    assert row["difference"] > 0.2 and row["lo"] > 0 and row["p_value"] < 0.01
    assert row["p_value"] >= 1 / 501 * 2 - 1e-12


def test_paired_shares_resamples_with_single_bootstrap(binary_set) -> None:
    ts = binary_set
    alt = 1 - ts.y_pred
    a = _boot(ts, n_boot=100, seed=3).samples
    b = fm.speaker_bootstrap(
        ts.y_true, alt, sensitive_features=ts.gender, speakers=ts.speaker, n_boot=100, seed=3
    ).samples
    out = fm.paired_bootstrap_test(
        ts.y_true,
        ts.y_pred,
        alt,
        sensitive_features=ts.gender,
        speakers=ts.speaker,
        n_boot=100,
        seed=3,
        metrics=["uar"],
    )
    lo, hi = np.percentile(a["uar"] - b["uar"], [2.5, 97.5])
    assert out.loc["uar", "lo"] == pytest.approx(lo) and out.loc["uar", "hi"] == pytest.approx(hi)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_boot": -1}, "n_boot=-1"),
        ({"confidence": 1.5}, "confidence=1.5"),
        ({"average": "min"}, "average='min'"),
    ],
)
def test_bad_options(binary_set, kwargs, fragment) -> None:
    with pytest.raises(MetricError, match=fragment):
        _boot(binary_set, **kwargs)


def test_speaker_in_two_genders_is_an_error() -> None:
    with pytest.raises(MetricError, match="speaker 'a' has rows in more than one group"):
        fm.speaker_bootstrap(
            [1, 0, 1], [1, 0, 0], sensitive_features=["M", "M", "F"], speakers=["a", "a", "a"]
        )


def test_paired_unknown_metric_is_an_error(binary_set) -> None:
    ts = binary_set
    with pytest.raises(MetricError, match="not among"):
        fm.paired_bootstrap_test(
            ts.y_true,
            ts.y_pred,
            ts.y_pred,
            sensitive_features=ts.gender,
            speakers=ts.speaker,
            metrics=["accuracy"],
        )


def test_single_speaker_gender_gives_no_interval() -> None:
    # Males: 6 speakers; females: one. The male UAR keeps its interval; the female UAR, the
    # overall UAR and every gap have none (a single speaker shows no between-speaker spread).
    rng = np.random.default_rng(0)
    speaker = np.repeat(["m1", "m2", "m3", "m4", "m5", "m6", "f1"], 20)
    gender = np.where(np.char.startswith(speaker, "m"), "M", "F")
    y_true, y_pred = rng.integers(0, 2, speaker.size), rng.integers(0, 2, speaker.size)
    res = fm.speaker_bootstrap(
        y_true, y_pred, sensitive_features=gender, speakers=speaker, n_boot=200
    )
    assert res.lo["uar_m"] < res.hi["uar_m"]
    for name in ("uar", "uar_f", "dsp", "tpr_gap", "fpr_gap", "deo_max", "deo_sum"):
        assert np.isnan(res.lo[name]) and np.isnan(res.hi[name]), name
        assert not np.isnan(res.estimate[name])
    loose = fm.speaker_bootstrap(
        y_true, y_pred, sensitive_features=gender, speakers=speaker, n_boot=200, min_speakers=1
    )
    assert loose.lo["uar_f"] == loose.hi["uar_f"] == loose.estimate["uar_f"]
    paired = fm.paired_bootstrap_test(
        y_true, y_pred, 1 - y_pred, sensitive_features=gender, speakers=speaker, n_boot=100
    )
    assert np.isnan(paired.loc["dsp", "p_value"]) and not np.isnan(paired.loc["uar_m", "p_value"])
    with pytest.raises(MetricError, match="min_speakers=0"):
        fm.speaker_bootstrap(
            y_true, y_pred, sensitive_features=gender, speakers=speaker, min_speakers=0
        )


def test_runs_are_averaged_and_resampled_together(binary_set) -> None:
    ts = binary_set
    rng = np.random.default_rng(9)
    other = np.where(rng.random(ts.y_pred.size) < 0.3, 1 - ts.y_pred, ts.y_pred)
    kw = {"sensitive_features": ts.gender, "speakers": ts.speaker, "n_boot": 200, "seed": 4}
    one = fm.speaker_bootstrap(ts.y_true, ts.y_pred, **kw)
    twice = fm.speaker_bootstrap(ts.y_true, np.stack([ts.y_pred, ts.y_pred]), **kw)
    assert one.to_dict() == pytest.approx(twice.to_dict(), nan_ok=True)
    both = fm.speaker_bootstrap(ts.y_true, np.stack([ts.y_pred, other]), **kw)
    single_other = fm.speaker_bootstrap(ts.y_true, other, **kw)
    for name in ("uar", "dsp", "deo_max"):
        assert both.estimate[name] == pytest.approx(
            (one.estimate[name] + single_other.estimate[name]) / 2
        )
        np.testing.assert_allclose(
            both.samples[name], (one.samples[name] + single_other.samples[name]) / 2
        )
    paired = fm.paired_bootstrap_test(
        ts.y_true, np.stack([ts.y_pred, other]), np.stack([ts.y_pred, other]), **kw
    )
    np.testing.assert_array_equal(paired["p_value"], 1.0)
    with pytest.raises(MetricError, match="runs of different lengths"):
        fm.speaker_bootstrap(ts.y_true, [ts.y_pred.tolist(), [0, 1, 0]], **kw)
