"""Cross-fitted probes of an erased embedding (metrics.probe.refit_per_fold).

An eraser fitted on the very rows it erases makes the class means equal over ALL of them, so a
probe trained on some speakers reads the held-out speakers' gender inverted: far BELOW chance.
Refitting the eraser per probe fold without the held-out speakers measures what it leaves on
unseen speakers: chance for linear information, above chance for non-linear information. With
nothing left to read, a probe predicts its training fold's majority gender, the held-out fold's
minority: the cross-fitted protocol weights the genders equally (``balanced=True``).
"""

from __future__ import annotations

import numpy as np
import pytest

from fairser.metrics import MetricError
from fairser.metrics.probe import gender_probe, mlp_gender_probe, refit_per_fold

FAST_MLP = {"hidden_layer_sizes": (32,), "max_iter": 150}


def _speakers(n_speakers: int = 24, utts: int = 15):
    gender = np.repeat(np.array(["M", "F"] * (n_speakers // 2)), utts)
    speaker = np.repeat(np.arange(n_speakers), utts).astype(str)
    return gender, speaker


def _orth_eraser(x, labels):
    """Project out the direction between the two class means (LEACE's ``orth`` for 2 classes):
    the class means of the fitting rows coincide afterwards."""
    labels = np.asarray(labels).astype(str)
    a, b = sorted(set(labels.tolist()))
    d = x[labels == a].mean(0) - x[labels == b].mean(0)
    d = d / np.linalg.norm(d)
    centre = x.mean(0)
    return lambda z, _labels: z - np.outer((z - centre) @ d, d)


def _linear(seed: int = 0, *, dims: int = 4, utts: int = 40, spread: float = 0.2):
    """Gender as a mean shift along one direction, speakers as random offsets (by default
    enough rows for an eraser fitted on a few speakers to find the direction accurately)."""
    rng = np.random.default_rng(seed)
    gender, speaker = _speakers(24, utts)
    x = (rng.normal(size=(gender.size, dims))
         + rng.normal(size=(24, dims))[speaker.astype(int)] * spread)
    x[:, 0] += np.where(gender == "M", 1.5, -1.5)
    return x, gender, speaker


def _nonlinear(seed: int = 1):
    """Gender in the SPREAD of two dimensions (invisible to a mean-matching eraser) and a
    mean shift on top."""
    rng = np.random.default_rng(seed)
    gender, speaker = _speakers()
    x = rng.normal(size=(gender.size, 6))
    x[:, :2] *= np.where(gender == "M", 2.5, 0.4)[:, None]
    x[:, 2] += np.where(gender == "M", 1.5, -1.5)
    return x, gender, speaker


def _cross(x, gender, speaker, *, disjoint: bool = False):
    return refit_per_fold(_orth_eraser, groups=speaker, labels=gender, pool_x=x,
                          pool_labels=gender, pool_groups=speaker, disjoint=disjoint)


def test_in_sample_erasure_scores_below_chance_cross_fitting_at_chance() -> None:
    x, gender, speaker = _linear()
    assert gender_probe(x, sensitive_features=gender, groups=speaker) > 0.9
    in_sample = _orth_eraser(x, gender)(x, gender)
    plain = gender_probe(in_sample, sensitive_features=gender, groups=speaker)
    assert plain < 0.4  # the artefact: gender still decodable, with the sign flipped
    cross = gender_probe(x, sensitive_features=gender, groups=speaker,
                         fold_transform=_cross(x, gender, speaker), balanced=True)
    assert cross == 0.5  # the probe trains on the eraser's own rows: nothing linear left
    disjoint = gender_probe(x, sensitive_features=gender, groups=speaker,
                            fold_transform=_cross(x, gender, speaker, disjoint=True),
                            balanced=True)
    assert abs(disjoint - 0.5) < 0.05  # trained on speakers the eraser never saw
    # unweighted, the emptied probe falls back to each training fold's majority gender
    majority = gender_probe(x, sensitive_features=gender, groups=speaker,
                            fold_transform=_cross(x, gender, speaker))
    assert majority < 0.45


def test_disjoint_probe_reads_what_an_eraser_fitted_on_few_rows_leaves() -> None:
    # few rows, wide: the eraser's direction is off for unseen speakers; a probe trained on
    # its own fitting rows cannot tell (0.5 by construction), one trained on unseen speakers can
    x, gender, speaker = _linear(dims=8, utts=15, spread=0.7)
    kw = {"sensitive_features": gender, "groups": speaker, "balanced": True}
    assert gender_probe(x, fold_transform=_cross(x, gender, speaker), **kw) == 0.5
    assert gender_probe(x, fold_transform=_cross(x, gender, speaker, disjoint=True), **kw) > 0.58


def test_cross_fitted_mlp_probe_still_reads_non_linear_gender() -> None:
    x, gender, speaker = _nonlinear()
    kw = {"sensitive_features": gender, "groups": speaker,
          "fold_transform": _cross(x, gender, speaker, disjoint=True), "balanced": True}
    assert gender_probe(x, sensitive_features=gender, groups=speaker) > 0.9
    linear = gender_probe(x, **kw)
    mlp = mlp_gender_probe(x, **kw, **FAST_MLP)
    assert abs(linear - 0.5) < 0.1  # the mean shift is gone for unseen speakers
    assert mlp > 0.8  # the spread is not: a non-linear probe reads it


def test_cross_fitted_probes_are_deterministic_per_seed() -> None:
    x, gender, speaker = _nonlinear()
    per_fold = _cross(x, gender, speaker, disjoint=True)
    kw = {"sensitive_features": gender, "groups": speaker, "fold_transform": per_fold,
          "balanced": True}
    assert gender_probe(x, seed=3, **kw) == gender_probe(x, seed=3, **kw)
    assert (mlp_gender_probe(x, seed=3, **kw, **FAST_MLP)
            == mlp_gender_probe(x, seed=3, **kw, **FAST_MLP))


def test_each_fold_refits_on_the_pool_without_its_held_out_speakers() -> None:
    x, gender, speaker = _linear()
    extra = np.random.default_rng(5).normal(size=(40, 4))  # e.g. source rows: always kept
    pool_x = np.concatenate([extra, x])
    pool_groups = np.concatenate([np.full(40, "src"), speaker])
    pool_labels = np.concatenate([np.where(np.arange(40) % 2, "M", "F"), gender])
    fitted_on: list[set[str]] = []
    applied: list[np.ndarray] = []

    def fit(px, plabels):
        rows = {tuple(r) for r in np.round(px, 9)}
        fitted_on.append({g for g, r in zip(pool_groups, np.round(pool_x, 9), strict=True)
                          if tuple(r) in rows})
        apply = _orth_eraser(px, plabels)

        def run(z, labels):
            applied.append(labels)
            return apply(z, labels)

        return run

    per_fold = refit_per_fold(fit, groups=speaker, labels=gender, pool_x=pool_x,
                              pool_labels=pool_labels, pool_groups=pool_groups)
    gender_probe(x, sensitive_features=gender, groups=speaker, fold_transform=per_fold)
    assert len(fitted_on) == 5
    held_out = [set(speaker) - s for s in fitted_on]
    assert all("src" in s for s in fitted_on)
    assert sorted(sp for h in held_out for sp in h) == sorted(set(speaker))  # each once
    assert all(np.array_equal(a, gender) for a in applied)  # every probe row with its label


def test_refit_per_fold_checks_lengths() -> None:
    x, gender, speaker = _linear()
    with pytest.raises(MetricError, match="labels"):
        refit_per_fold(_orth_eraser, groups=speaker, labels=gender[:-1], pool_x=x,
                       pool_labels=gender, pool_groups=speaker)
    with pytest.raises(MetricError, match="pool_x"):
        refit_per_fold(_orth_eraser, groups=speaker, labels=gender, pool_x=x[:-1],
                       pool_labels=gender, pool_groups=speaker)


def test_disjoint_folds_train_the_probe_on_speakers_the_eraser_never_saw() -> None:
    x, gender, speaker = _linear()
    seen: list[tuple[set[str], set[str]]] = []

    def fit(px, plabels):
        rows = {tuple(r) for r in np.round(px, 9)}
        seen.append({s for s, r in zip(speaker, np.round(x, 9), strict=True)
                     if tuple(r) in rows})
        return _orth_eraser(px, plabels)

    per_fold = refit_per_fold(fit, groups=speaker, labels=gender, pool_x=x, pool_labels=gender,
                              pool_groups=speaker, disjoint=True, seed=4)
    parts = per_fold(np.flatnonzero(speaker.astype(int) >= 4))  # speakers 0-3 held out
    assert len(parts) == 2 and len(seen) == 2
    trained = [set(speaker[rows]) for _, rows in parts]
    assert not trained[0] & trained[1] and trained[0] | trained[1] == set(speaker) - set("0123")
    for fitted, probed in zip(seen, trained, strict=True):
        assert not fitted & probed and not fitted & set("0123")  # eraser never saw them
        assert {gender[speaker == s][0] for s in probed} == {"M", "F"}  # balanced halves
    again = refit_per_fold(fit, groups=speaker, labels=gender, pool_x=x, pool_labels=gender,
                           pool_groups=speaker, disjoint=True, seed=4)
    assert [set(speaker[r]) for _, r in again(np.flatnonzero(speaker.astype(int) >= 4))] == trained
