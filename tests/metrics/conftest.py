"""Generated test sets for the metric tests (fixed seeds, no files)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class TestSet:
    """Labels, predictions, genders and speakers of one generated test set."""

    y_true: np.ndarray
    y_pred: np.ndarray
    gender: np.ndarray
    speaker: np.ndarray


def make_test_set(
    seed: int,
    *,
    n_speakers: int = 20,
    utts: int = 25,
    p_true: float = 0.4,
    sel: tuple[float, float] = (0.5, 0.5),
    speaker_sd: float = 0.0,
    n_classes: int = 2,
) -> TestSet:
    """Speakers split evenly between M and F; predictions Bernoulli per speaker.

    ``sel`` is the mean probability of predicting 1 for (M, F); ``speaker_sd`` adds a speaker
    effect. For ``n_classes > 2`` labels and predictions are uniform over the classes.
    """
    rng = np.random.default_rng(seed)
    genders, speakers, preds, truths = [], [], [], []
    for s in range(n_speakers):
        g = "M" if s % 2 == 0 else "F"
        base = sel[0] if g == "M" else sel[1]
        p = float(np.clip(base + rng.normal(0.0, speaker_sd), 0.0, 1.0)) if speaker_sd else base
        if n_classes == 2:
            truths.append((rng.random(utts) < p_true).astype(np.int64))
            preds.append((rng.random(utts) < p).astype(np.int64))
        else:
            truths.append(rng.integers(0, n_classes, utts))
            preds.append(rng.integers(0, n_classes, utts))
        genders += [g] * utts
        speakers += [f"{g}{s:02d}"] * utts
    return TestSet(
        y_true=np.concatenate(truths),
        y_pred=np.concatenate(preds),
        gender=np.asarray(genders),
        speaker=np.asarray(speakers),
    )


@pytest.fixture
def binary_set() -> TestSet:
    """A 500-utterance binary test set, 20 speakers, unequal selection rates."""
    return make_test_set(3, sel=(0.6, 0.4), speaker_sd=0.05)


@pytest.fixture
def make_set():
    """The :func:`make_test_set` factory, for tests that need many generated sets."""
    return make_test_set
