"""The linear baseline (the floor every trained method is compared with).

Logistic regression (class-balanced, C = 1) on mean-pooled, z-normed input features, trained
on the source train split after the fit's source condition. ``linear_baseline_norm`` chooses
the z-norm statistics: ``per-corpus`` uses the source train rows for the source and the
target's adaptation rows (unlabelled, as the adapted models see them) for the target,
``source`` the source train rows everywhere, ``per-speaker`` each (corpus, speaker)'s own
rows (the issue-10 reference: statistics of the speaker's mean-pooled utterances) and
``per-speaker-frames`` each (corpus, speaker)'s frames (the statistics
``input_norm: per-speaker`` standardises the models' frames with). Per speaker, the statistics
come from the speaker's rows in the set at hand: the source train rows when training; the
evaluated rows, with the target's adaptation rows, when scoring (audio only, no labels).
Named ``linear-baseline`` in results (``linear-probe`` before; see
:data:`fairser.experiments.planning.LEGACY_BASELINE_METHODS`), so it is not confused with the
gender probe.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

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
    utterance_keys,
)

__all__ = ["fit_linear_baseline", "speaker_normed"]

#: Fewest utterances of a speaker for its own statistics (else its corpus's, in the same set).
MIN_SPEAKER_ROWS = 2


def _moments(features: Any, rows: pd.DataFrame, *, frames: bool
             ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the frames (``frames``) or of the mean-pooled utterances of ``rows``."""
    if not frames:
        x = pooled_features(features, rows)
        return x.mean(axis=0), x.std(axis=0)
    total, square, count = 0.0, 0.0, 0
    for key in utterance_keys(rows):
        a = np.asarray(features[key], dtype=np.float64)
        a = a[None] if a.ndim == 2 else a  # (L, T, D)
        total = total + a.sum(axis=1).reshape(-1)
        square = square + (a ** 2).sum(axis=1).reshape(-1)
        count += a.shape[1]
    mean = total / count
    return mean, np.sqrt(np.maximum(square / count - mean ** 2, 0.0))


def speaker_normed(features: Any, rows: pd.DataFrame, stats_rows: pd.DataFrame, *,
                   frames: bool) -> np.ndarray:
    """Mean-pooled features of ``rows``, each z-normed with its (corpus, speaker)'s statistics.

    Parameters
    ----------
    features : FeatureSet
        Features of every row.
    rows : DataFrame
        Rows to return, in order (``corpus``, ``utt_id``, ``speaker``).
    stats_rows : DataFrame
        Rows the statistics come from (must hold every speaker of ``rows``); a speaker with
        fewer than :data:`MIN_SPEAKER_ROWS` of them gets its corpus's statistics over them.
    frames : bool
        Statistics of the speaker's frames (as ``input_norm: per-speaker``) instead of its
        mean-pooled utterances.

    Returns
    -------
    numpy.ndarray
        ``(len(rows), L * D)`` float32.
    """
    x = pooled_features(features, rows)
    out = np.empty_like(x)
    spk = stats_rows["corpus"].astype(str) + "\x1f" + stats_rows["speaker"].astype(str)
    corpus = stats_rows["corpus"].astype(str).to_numpy()
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    row_spk = (rows["corpus"].astype(str) + "\x1f" + rows["speaker"].astype(str)).to_numpy()
    for i, (name, c) in enumerate(zip(row_spk, rows["corpus"].astype(str), strict=True)):
        if name not in cache:
            own = (spk == name).to_numpy()
            pick = own if own.sum() >= MIN_SPEAKER_ROWS else corpus == c
            cache[name] = _moments(features, stats_rows.loc[pick], frames=frames)
        mean, std = cache[name]
        out[i] = (x[i] - mean) / (std + 1e-6)
    return out


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
    per_speaker = cfg.linear_baseline_norm.startswith("per-speaker")
    frames = cfg.linear_baseline_norm == "per-speaker-frames"
    z_train = (speaker_normed(data.features, train, train, frames=frames) if per_speaker
               else (x_train - mu) / sd)
    clf = LogisticRegression(max_iter=3000, class_weight="balanced", C=1.0)
    clf.fit(z_train, labels(train, cfg, spec.emotion))
    fit_s = time.perf_counter() - start
    rows, speakers, preds = [], [], []
    for corpus, role, df in evaluated_rows(cfg, data, spec):
        x = pooled_features(data.features, df)
        if per_speaker:
            stats = (pd.concat([df, data.adapt[spec.target]], ignore_index=True)
                     .drop_duplicates(subset=["corpus", "utt_id"]) if role == "target" else df)
            y_pred = clf.predict(speaker_normed(data.features, df, stats, frames=frames))
        elif role == "target" and cfg.linear_baseline_norm == "per-corpus":
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
