"""The linear baseline (the floor every trained method is compared with).

Logistic regression (class-balanced, C = 1) on mean-pooled, z-normed input features, trained
on the source train split after the fit's source condition. ``linear_baseline_norm`` chooses
the z-norm statistics on the target: ``per-corpus`` uses the target's adaptation rows
(unlabelled, as the adapted models see them), ``source`` the source train rows everywhere.
Named ``linear-baseline`` in results (``linear-probe`` before; see
:data:`fairser.experiments.planning.LEGACY_BASELINE_METHODS`), so it is not confused with the
gender probe.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fairser.errors import TrainingError
from fairser.experiments.backend import Backend
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.inputs import GridData, evaluated_rows, source_train
from fairser.experiments.planning import FitSpec
from fairser.experiments.scoring import (
    base_row,
    labels,
    pooled_features,
    prediction_frame,
    score,
)

__all__ = ["fit_linear_baseline"]


def fit_linear_baseline(cfg: ExperimentConfig, backend: Backend, data: GridData, spec: FitSpec,
                        digest: str, probe_input: dict[str, float]) -> dict[str, Any]:
    """Fit and score the linear baseline of ``spec``'s emotion, target and condition.

    Returns
    -------
    dict
        ``rows`` (results rows), ``per_speaker``, ``fit_s`` and ``predictions`` (frames).
    """
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    train_all = source_train(data, cfg, spec)
    train = train_all[(train_all["split"] == "train").fillna(False).to_numpy(dtype=bool)]
    train = train.reset_index(drop=True)
    x_train = pooled_features(data.features, train)
    if not np.isfinite(x_train).all():
        raise TrainingError(f"{spec.key}: mean-pooled input features of the source train rows "
                            "are NaN or infinite; re-extract the features")
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    clf = LogisticRegression(max_iter=3000, class_weight="balanced", C=1.0)
    clf.fit((x_train - mu) / sd, labels(train, cfg, spec.emotion))
    fit_s = time.perf_counter() - start
    rows, speakers, preds = [], [], []
    for corpus, role, df in evaluated_rows(cfg, data, spec):
        x = pooled_features(data.features, df)
        if role == "target" and cfg.linear_baseline_norm == "per-corpus":
            adapt = pooled_features(data.features, data.adapt[spec.target])
            y_pred = clf.predict((x - adapt.mean(axis=0)) / (adapt.std(axis=0) + 1e-6))
        else:
            y_pred = clf.predict((x - mu) / sd)
        base = base_row(spec, corpus, role, digest, fit_s)
        y_true = labels(df, cfg, spec.emotion)
        row, spk = score(backend, cfg, y_true=y_true, y_pred=y_pred, df=df, base=base,
                         gc_acc=float("nan"), probe=float("nan"),
                         probe_input=probe_input.get(corpus, float("nan")))
        rows.append(row)
        speakers.extend(spk)
        preds.append(prediction_frame(df, base, y_true, y_pred, None))
    return {"rows": rows, "per_speaker": speakers, "fit_s": fit_s, "predictions": preds}
