"""Gender probe with speaker-disjoint folds, gender-head accuracy and frame pooling."""

from __future__ import annotations

import numpy as np
import pytest

from fairser import metrics as fm
from fairser.metrics import MetricError


def _speakers(n_speakers: int = 20, utts: int = 15):
    gender = np.repeat(np.array(["M", "F"] * (n_speakers // 2)), utts)
    speaker = np.repeat(np.arange(n_speakers), utts).astype(str)
    return gender, speaker


def test_probe_reads_a_gender_direction() -> None:
    rng = np.random.default_rng(0)
    gender, speaker = _speakers()
    emb = rng.normal(size=(gender.size, 8))
    emb[:, 3] += np.where(gender == "M", 2.0, -2.0)
    assert fm.gender_probe(emb, sensitive_features=gender, groups=speaker) > 0.95


def test_probe_is_at_chance_without_gender_information() -> None:
    rng = np.random.default_rng(1)
    gender, speaker = _speakers()
    emb = rng.normal(size=(gender.size, 8))
    assert abs(fm.gender_probe(emb, sensitive_features=gender, groups=speaker) - 0.5) < 0.12


def test_probe_folds_are_speaker_disjoint() -> None:
    # Embeddings encode only speaker identity. A probe that saw a held-out speaker in training
    # would map it to its gender; speaker-disjoint folds leave it at chance.
    rng = np.random.default_rng(2)
    gender, speaker = _speakers(n_speakers=20, utts=15)
    centre = rng.normal(size=(20, 40)) * 3.0
    emb = centre[speaker.astype(int)] + rng.normal(size=(gender.size, 40)) * 0.3
    disjoint = fm.gender_probe(emb, sensitive_features=gender, groups=speaker)
    leaky = fm.gender_probe(emb, sensitive_features=gender, groups=np.arange(gender.size))
    assert leaky > 0.9
    assert disjoint < 0.75


def test_probe_is_seeded_and_handles_float16_and_few_speakers() -> None:
    rng = np.random.default_rng(3)
    gender, speaker = _speakers(n_speakers=4, utts=10)
    emb = rng.normal(size=(gender.size, 6)).astype(np.float16)
    a = fm.gender_probe(emb, sensitive_features=gender, groups=speaker, seed=5)
    b = fm.gender_probe(emb, sensitive_features=gender, groups=speaker, seed=5)
    assert a == b and 0.0 <= a <= 1.0


def test_probe_with_single_gender_training_fold_predicts_that_gender() -> None:
    # Two speakers (one per gender): each training fold holds a single gender, so every
    # held-out row gets the other gender: balanced accuracy 0.
    gender, speaker = _speakers(n_speakers=2, utts=10)
    emb = np.random.default_rng(4).normal(size=(gender.size, 3))
    assert fm.gender_probe(emb, sensitive_features=gender, groups=speaker) == 0.0


@pytest.mark.parametrize(
    ("emb", "gender", "groups", "fragment"),
    [
        (np.zeros((4, 2, 2)), list("MFMF"), list("abcd"), "expected shape"),
        (np.array([[0.0], [np.nan], [1.0], [2.0]]), list("MFMF"), list("abcd"), "row 1 holds NaN"),
        (np.zeros((4, 2)), list("MMMM"), list("abcd"), "two genders"),
        (np.zeros((4, 2)), list("MFMF"), list("aaaa"), "single speaker"),
        (np.zeros((4, 2)), list("MFM"), list("abcd"), "embeddings has 4 rows"),
    ],
)
def test_probe_bad_input(emb, gender, groups, fragment) -> None:
    with pytest.raises(MetricError, match=fragment):
        fm.gender_probe(emb, sensitive_features=gender, groups=groups)


def test_gc_accuracy_balanced_and_plain() -> None:
    truth = np.array(["M"] * 8 + ["F"] * 2)
    head = np.array(["M"] * 10)
    assert fm.gc_accuracy(truth, head) == pytest.approx(0.5)
    assert fm.gc_accuracy(truth, head, balanced=False) == pytest.approx(0.8)
    assert np.isnan(fm.gc_accuracy(truth, None))
    with pytest.raises(MetricError, match="attribute_pred has 3 rows"):
        fm.gc_accuracy(truth, head[:3])


def test_pool_frames_means_over_time_and_concatenates_layers() -> None:
    a = np.arange(2 * 3 * 4, dtype=np.float16).reshape(2, 3, 4)
    b = np.ones((2, 5, 4), dtype=np.float16)
    pooled = fm.pool_frames([a, b])
    assert pooled.shape == (2, 8) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled[0], a.astype(np.float32).mean(axis=1).reshape(-1))
    np.testing.assert_allclose(fm.pool_frames([np.ones((3, 4))]), np.ones((1, 4)))
    with pytest.raises(MetricError, match="different sizes"):
        fm.pool_frames([a, np.ones((1, 2, 4))])
    with pytest.raises(MetricError, match="no arrays"):
        fm.pool_frames([])


def test_probe_restores_blas_threads() -> None:
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info()]
    gender, speaker = _speakers(n_speakers=6, utts=5)
    emb = np.random.default_rng(5).normal(size=(gender.size, 4))
    fm.gender_probe(emb, sensitive_features=gender, groups=speaker, threads=1)
    assert [p["num_threads"] for p in threadpool_info()] == before


# --- MLP probe -----------------------------------------------------------------------------

from fairser.metrics.probe import mlp_gender_probe  # noqa: E402


def _xor_gender(n_speakers: int = 12, utts: int = 12, seed: int = 6):
    """Gender encoded as the sign of x0 * x1: no linear probe can read it, an MLP can."""
    rng = np.random.default_rng(seed)
    gender, speaker = _speakers(n_speakers, utts)
    emb = rng.normal(size=(gender.size, 3))
    sign = np.sign(emb[:, 0] * emb[:, 1])
    want = np.where(gender == "M", 1.0, -1.0)
    emb[:, 1] *= sign * want  # now sign(x0 * x1) == +1 for M, -1 for F
    return emb, gender, speaker


def test_mlp_probe_reads_non_linear_gender_that_the_linear_probe_misses() -> None:
    emb, gender, speaker = _xor_gender()
    assert np.all(np.sign(emb[:, 0] * emb[:, 1]) == np.where(gender == "M", 1, -1))
    mlp = mlp_gender_probe(emb, sensitive_features=gender, groups=speaker)
    linear = fm.gender_probe(emb, sensitive_features=gender, groups=speaker)
    assert mlp > 0.85
    assert linear < 0.65


def test_mlp_probe_is_at_chance_on_random_labels() -> None:
    rng = np.random.default_rng(7)
    gender, speaker = _speakers()
    emb = rng.normal(size=(gender.size, 16))
    shuffled = rng.permutation(np.unique(speaker))  # random gender per speaker
    gender = np.where(np.isin(speaker, shuffled[:10]), "M", "F")
    fast = {"hidden_layer_sizes": (32,), "max_iter": 60}
    probe = mlp_gender_probe(emb, sensitive_features=gender, groups=speaker, **fast)
    assert abs(probe - 0.5) < 0.12


def test_mlp_probe_is_seeded_uses_speaker_disjoint_folds_and_validates() -> None:
    rng = np.random.default_rng(8)
    gender, speaker = _speakers(n_speakers=20, utts=15)
    centre = rng.normal(size=(20, 20)) * 3.0
    emb = centre[speaker.astype(int)] + rng.normal(size=(gender.size, 20)) * 0.3
    fast = {"hidden_layer_sizes": (32,), "max_iter": 60}
    a = mlp_gender_probe(emb, sensitive_features=gender, groups=speaker, seed=3, **fast)
    assert a == mlp_gender_probe(emb, sensitive_features=gender, groups=speaker, seed=3, **fast)
    assert a < 0.75  # speaker identity alone does not reveal held-out speakers' gender
    # few speakers, few rows, an override
    small_g, small_s = _speakers(n_speakers=4, utts=6)
    small = mlp_gender_probe(rng.normal(size=(24, 3)), sensitive_features=small_g,
                             groups=small_s, **fast)
    assert 0.0 <= small <= 1.0
    with pytest.raises(MetricError, match="two genders"):
        mlp_gender_probe(np.zeros((4, 2)), sensitive_features=list("MMMM"), groups=list("abcd"))


def _mean_equaliser(x, gender, rows):
    """Shift each gender's rows so that the genders' means over ``rows`` coincide."""
    shift = {g: x[rows][gender[rows] == g].mean(axis=0) for g in ("M", "F")}
    centre = x[rows].mean(axis=0)
    return lambda z: z - np.stack([shift[g] for g in gender]) + centre


def test_fold_transform_is_fitted_per_fold_and_avoids_the_in_sample_artefact() -> None:
    rng = np.random.default_rng(9)
    gender, speaker = _speakers(n_speakers=20, utts=15)
    emb = rng.normal(size=(gender.size, 4)) + rng.normal(size=(20, 4))[speaker.astype(int)]
    emb[:, 0] += np.where(gender == "M", 1.0, -1.0)
    # equalising the gender means on ALL rows leaves held-out speakers' signal inverted
    in_sample = _mean_equaliser(emb, gender, np.arange(gender.size))(emb)
    in_sample_probe = fm.gender_probe(in_sample, sensitive_features=gender, groups=speaker)
    assert in_sample_probe < 0.35
    seen = []

    def per_fold(train):
        seen.append(set(speaker[train]))
        return _mean_equaliser(emb, gender, train)

    cross = fm.gender_probe(emb, sensitive_features=gender, groups=speaker,
                            fold_transform=per_fold)
    assert len(seen) == 5 and all(len(s) == 16 for s in seen)
    assert abs(cross - 0.5) < abs(in_sample_probe - 0.5) - 0.1
    fast = {"hidden_layer_sizes": (16,), "max_iter": 30}
    assert 0.0 <= mlp_gender_probe(emb, sensitive_features=gender, groups=speaker,
                                   fold_transform=per_fold, **fast) <= 1.0
