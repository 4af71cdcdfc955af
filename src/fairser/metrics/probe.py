"""Gender detection: how much of the protected attribute a representation still carries.

Two measurements, both reported:

- :func:`gc_accuracy`: the accuracy of the model's own gender head. Adversarial training drives
  it towards chance, but a head that cannot read gender does not prove the representation
  lacks it.
- :func:`gender_probe`: an independent probe, a logistic regression trained on the frozen
  embeddings with speaker-disjoint folds, scored by balanced accuracy (chance 0.5). Run it on
  the pooled input features (:func:`pool_frames`) too, as the reference the model starts from.
- :func:`mlp_gender_probe`: the same protocol with a small MLP (reads non-linear codes).

Embeddings that went through a FITTED transform (a gender eraser) must not be probed on the
rows the transform was fitted on: the in-sample fit inverts held-out speakers' gender and the
probe scores far BELOW chance, an artefact. :func:`refit_per_fold` builds the probes'
``fold_transform``: the transform refitted, in each fold, on its own fitting rows minus the
fold's held-out speakers (cross-fitting), so the probe measures what the transform leaves on
speakers it has not seen. The transform's recipe comes in as a function (this layer imports
no lever).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fairser.metrics._core import MetricError, as_1d, core_metrics, encode, group_counts
from fairser.metrics.crossfit import refit_per_fold

__all__ = [
    "MLP_PROBE_DEFAULTS",
    "gc_accuracy",
    "gender_probe",
    "mlp_gender_probe",
    "pool_frames",
    "refit_per_fold",
]


def _balanced_accuracy(y_true: Any, y_pred: Any) -> float:
    """Mean recall over the classes of ``y_true`` (the UAR)."""
    enc = encode(y_true, y_pred, pos_label=object())
    return float(core_metrics(group_counts(enc), pos=None)["uar"])


def gc_accuracy(
    sensitive_features: Any, attribute_pred: Any | None, *, balanced: bool = True
) -> float:
    """Accuracy of a model's own gender head on its predictions.

    Parameters
    ----------
    sensitive_features : array-like of shape (n,)
        True gender of each row.
    attribute_pred : array-like of shape (n,) or None
        Gender predicted by the model's head (``FittedModel.attribute_predict``); None for
        methods without a gender head.
    balanced : bool, default True
        Balanced accuracy (mean recall over genders, chance 0.5 whatever the gender mix) if
        True, plain accuracy if False.

    Returns
    -------
    float
        The accuracy, or NaN when ``attribute_pred`` is None.
    """
    if attribute_pred is None:
        return float("nan")
    truth = as_1d(sensitive_features, name="sensitive_features")
    pred = as_1d(attribute_pred, name="attribute_pred")
    if len(truth) != len(pred):
        raise MetricError(
            f"attribute_pred has {len(pred)} rows but sensitive_features has {len(truth)}; "
            "pass one prediction per row"
        )
    if balanced:
        return _balanced_accuracy(truth, pred)
    return float(np.mean(truth.astype(str) == pred.astype(str)))


def pool_frames(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Mean-pool frame features over time and concatenate the layers, one row per utterance.

    Parameters
    ----------
    arrays : iterable of numpy.ndarray
        Per-utterance features of shape ``(L, T, D)`` (a :class:`fairser.features.FeatureSet`
        item) or ``(T, D)``; all with the same L and D.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, L * D)``, float32: the input-feature reference for :func:`gender_probe`.
    """
    rows = []
    for i, a in enumerate(arrays):
        x = np.asarray(a, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1] == 0:
            raise MetricError(
                f"pool_frames: item {i} has shape {x.shape}; expected (L, T, D) with T >= 1"
            )
        rows.append(x.mean(axis=1).reshape(-1))
    if not rows:
        raise MetricError("pool_frames: no arrays given; pass at least one utterance")
    widths = {r.size for r in rows}
    if len(widths) != 1:
        raise MetricError(
            f"pool_frames: items have different sizes {sorted(widths)}; use one frontend/layers"
        )
    return np.stack(rows)


#: Hyper-parameters of :func:`mlp_gender_probe` (documented there; fixed so figures compare).
MLP_PROBE_DEFAULTS: dict[str, Any] = {
    "hidden_layer_sizes": (128,),
    "alpha": 1e-3,
    "learning_rate_init": 1e-3,
    "batch_size": 64,
    "max_iter": 200,
    "early_stopping": False,
    "n_iter_no_change": 10,
    "tol": 1e-4,
}


def _probe_inputs(embeddings: Any, sensitive_features: Any, groups: Any,
                  n_splits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(x, gender, speaker)`` arrays of a probe; raises :class:`MetricError`."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise MetricError(f"embeddings: expected shape (n, E), got {x.shape}; pool or reshape")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise MetricError(
            f"embeddings: row {int(np.flatnonzero(bad)[0])} holds NaN or inf "
            f"({int(bad.sum())} rows); drop them or fix the features"
        )
    y = as_1d(sensitive_features, name="sensitive_features").astype(str)
    spk = as_1d(groups, name="groups").astype(str)
    if not len(y) == len(spk) == len(x):
        raise MetricError(
            f"embeddings has {len(x)} rows, sensitive_features {len(y)}, groups {len(spk)}; "
            "pass one row per utterance in each"
        )
    if n_splits < 2:
        raise MetricError(f"n_splits={n_splits} must be >= 2; e.g. 5")
    genders = np.unique(y)
    if genders.size < 2:
        raise MetricError(
            f"sensitive_features holds only {genders.tolist()}; the probe needs two genders"
        )
    if np.unique(spk).size < 2:
        raise MetricError("groups holds a single speaker; the probe needs speaker-disjoint folds")
    return x, y, spk


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    """Row weights giving every class the same total (scikit-learn's ``"balanced"``)."""
    classes, index, counts = np.unique(y, return_inverse=True, return_counts=True)
    return (len(y) / (len(classes) * counts))[index]


def _cross_validated(x: np.ndarray, y: np.ndarray, spk: np.ndarray, *, make_model: Any,
                     n_splits: int, seed: int, threads: int | None,
                     fold_transform: Any = None, balanced: bool = False) -> float:
    """Balanced accuracy of out-of-fold predictions over speaker-disjoint folds.

    ``fold_transform(train)`` returns a transform, or a list of ``(transform, rows)``: each
    part trains the probe on ``rows`` (a subset of ``train``) of its transformed inputs and
    predicts the held-out rows; every part's predictions count.
    """
    n_spk = np.unique(spk).size
    folds = GroupKFold(n_splits=min(n_splits, n_spk), shuffle=True, random_state=seed)
    truth, pred = [], []
    with threadpool_limits(limits=threads):
        for train, test in folds.split(x, y, groups=spk):
            parts = [(None, train)] if fold_transform is None else fold_transform(train)
            if callable(parts):
                parts = [(parts, train)]
            for transform, rows in parts:
                present = np.unique(y[rows])
                truth.append(y[test])
                if present.size < 2:
                    pred.append(np.full(len(test), present[0], dtype=object))
                    continue
                xf = x if transform is None else np.asarray(transform(x), dtype=np.float64)
                model = make_pipeline(StandardScaler(), make_model(len(rows)))
                weights = {}
                if balanced:
                    weights = {f"{model.steps[-1][0]}__sample_weight": _balanced_weights(y[rows])}
                model.fit(xf[rows], y[rows], **weights)
                pred.append(model.predict(xf[test]))
    return _balanced_accuracy(np.concatenate(truth), np.concatenate(pred).astype(str))


def gender_probe(
    embeddings: Any,
    *,
    sensitive_features: Any,
    groups: Any,
    n_splits: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 2000,
    threads: int | None = 1,
    fold_transform: Callable[[np.ndarray], Callable[[np.ndarray], Any]] | None = None,
    balanced: bool = False,
) -> float:
    """Balanced accuracy of a logistic-regression gender probe with speaker-disjoint folds.

    Each fold trains a standardised logistic regression on the other folds' speakers and
    predicts the held-out speakers; the balanced accuracy is computed once over all
    out-of-fold predictions. 0.5 means gender is not linearly recoverable; 1.0 means it is
    perfectly recoverable. A training fold that holds a single gender predicts that gender.

    Parameters
    ----------
    embeddings : array-like of shape (n, E)
        Frozen embeddings (``FittedModel.embed``) or pooled input features (:func:`pool_frames`).
    sensitive_features : array-like of shape (n,)
        Gender of each row.
    groups : array-like of shape (n,)
        Speaker of each row; no speaker is in both the training and the held-out part of a fold
        (scikit-learn's ``groups``).
    n_splits : int, default 5
        Number of folds, reduced to the number of speakers when there are fewer (at least 2).
    seed : int, default 0
        Seed of the assignment of speakers to folds.
    C : float, default 1.0
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int, default 2000
        Iteration limit of the solver.
    threads : int or None, default 1
        BLAS threads while fitting (restored afterwards); None leaves the current setting.
        Probe-sized problems run fastest on one thread, and far slower when several
        processes oversubscribe the cores.
    fold_transform : callable, optional
        ``fold_transform(train_index)`` returns a function applied to ALL rows before the
        fold's probe is fitted; it must be fitted on the ``train_index`` rows only (e.g. a
        gender eraser). Probing data that an eraser was fitted on measures an in-sample
        artefact: held-out speakers' gender signal comes out inverted, and the probe scores
        far BELOW 0.5; cross-fitting through this hook measures how the transform does on
        speakers it has not seen (:func:`refit_per_fold`).
    balanced : bool, default False
        Weight the genders equally when fitting. A probe left with nothing to read predicts
        its training fold's majority gender, and speaker-disjoint folds make that the
        held-out fold's MINORITY gender: below 0.5 again. Use it with ``fold_transform``
        (an eraser leaves nothing linear to read); off, the figures of earlier runs.

    Returns
    -------
    float
        Balanced accuracy over all rows, chance 0.5.

    Raises
    ------
    MetricError
        If shapes disagree, a value is missing or not finite, or there are fewer than two
        speakers or genders.
    """
    x, y, spk = _probe_inputs(embeddings, sensitive_features, groups, n_splits)
    return _cross_validated(
        x, y, spk, n_splits=n_splits, seed=seed, threads=threads, fold_transform=fold_transform,
        balanced=balanced,
        make_model=lambda n: LogisticRegression(C=C, max_iter=max_iter, random_state=seed),
    )


def mlp_gender_probe(
    embeddings: Any,
    *,
    sensitive_features: Any,
    groups: Any,
    n_splits: int = 5,
    seed: int = 0,
    threads: int | None = 1,
    fold_transform: Callable[[np.ndarray], Callable[[np.ndarray], Any]] | None = None,
    balanced: bool = False,
    **hyper: Any,
) -> float:
    """Balanced accuracy of a small MLP gender probe with speaker-disjoint folds.

    The protocol of :func:`gender_probe` (the same folds for the same ``seed``, standardised
    inputs, one balanced accuracy over all out-of-fold predictions, chance 0.5) with a
    scikit-learn :class:`~sklearn.neural_network.MLPClassifier` in place of the logistic
    regression, so it also reads gender that is encoded non-linearly. Hyper-parameters
    (:data:`MLP_PROBE_DEFAULTS`): one hidden layer of 128 ReLU units, L2 penalty
    ``alpha=1e-3``, Adam with learning rate 1e-3 and mini-batches of 64, at most 200 epochs,
    stopping when the training loss has not improved by ``tol=1e-4`` for 10 epochs (no
    early stopping on a held-out part: on a few hundred rows it stops before the network has
    found a non-linear code, measured), weights seeded with ``seed``. About 1-3 minutes on
    2,500 rows of 512 dimensions on one busy core. Convergence warnings are silenced: a probe
    that stops at ``max_iter`` is still a probe.

    Parameters
    ----------
    embeddings : array-like of shape (n, E)
        Frozen embeddings or pooled input features.
    sensitive_features : array-like of shape (n,)
        Gender of each row.
    groups : array-like of shape (n,)
        Speaker of each row (speaker-disjoint folds).
    n_splits : int, default 5
        Number of folds, reduced to the number of speakers when there are fewer.
    seed : int, default 0
        Seed of the folds and of the network's initialisation and early-stopping split.
    threads : int or None, default 1
        BLAS threads while fitting; None leaves the current setting.
    fold_transform : callable, optional
        As in :func:`gender_probe` (a transform fitted on each fold's training rows).
    balanced : bool, default False
        As in :func:`gender_probe` (genders weighted equally in the loss).
    **hyper
        Overrides of :data:`MLP_PROBE_DEFAULTS` (any ``MLPClassifier`` argument).

    Returns
    -------
    float
        Balanced accuracy over all rows, chance 0.5.

    Raises
    ------
    MetricError
        As :func:`gender_probe`.
    """
    x, y, spk = _probe_inputs(embeddings, sensitive_features, groups, n_splits)
    options = {**MLP_PROBE_DEFAULTS, **hyper}

    def make_model(n_train: int) -> MLPClassifier:
        batch = options["batch_size"]
        if isinstance(batch, int):  # sklearn warns when a batch exceeds the fold
            batch = min(batch, n_train)
        return MLPClassifier(random_state=seed, **{**options, "batch_size": batch})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _cross_validated(x, y, spk, n_splits=n_splits, seed=seed, threads=threads,
                                make_model=make_model, fold_transform=fold_transform,
                                balanced=balanced)

