"""Scoring a fitted model on one evaluated corpus: result rows, per-speaker rows, predictions.

Everything here turns predictions into the rows of ``results.csv``, ``per_speaker.csv`` and
``predictions.parquet``; the metrics themselves come from the metrics layer through the
backend (``evaluate``, ``gender_probe``, ``gc_accuracy``), UAR from
:func:`fairser.metrics.unweighted_average_recall`, pooling from
:func:`fairser.metrics.pool_frames`, scores -> labels from :func:`fairser.decision.decide`.

Probes of a model with an embedding eraser (``erase_on: embedding``) are CROSS-FITTED
(:func:`fairser.experiments.crossfit.erased_probe_inputs`; ``probe_protocol`` in results is
``cross-fitted``, else ``plain``): the eraser is fitted on the rows it then erases (source
training rows and the target rows), so a probe of its output on those rows measures an
in-sample artefact (held-out speakers' gender comes out inverted, balanced accuracy far BELOW
0.5). Instead, in each speaker-disjoint probe fold, the training speakers are split into two
halves; the eraser is refitted by the model's own recipe on its fitting rows minus the
held-out speakers and one half, the probe (genders weighted equally) trains on the other half
and scores the held-out speakers, then the halves swap
(:func:`fairser.metrics.probe.refit_per_fold`, :data:`DISJOINT`): the eraser has seen neither
the probe's training nor its test speakers, as for new speakers in deployment. (Refitting it
on the probe's own training speakers instead makes the logistic probe 0.5 by construction.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairser.corpora import utt_key
from fairser.decision import decide
from fairser.errors import TrainingError
from fairser.experiments.backend import Backend, FittedModelLike
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.crossfit import ErasedProbe, erased_probe_inputs
from fairser.experiments.planning import FitSpec

__all__ = [
    "NonFiniteOutputs",
    "base_row",
    "crossfit_note",
    "decisions",
    "genders",
    "labels",
    "model_outputs",
    "pooled_features",
    "prediction_frame",
    "PROBE_VERSION",
    "probe",
    "probe_figures",
    "probe_notes",
    "probe_rows",
    "score",
    "utterance_keys",
]


class NonFiniteOutputs(TrainingError):
    """A fitted model's probabilities or embeddings are NaN or infinite (training diverged)."""


def utterance_keys(manifest: pd.DataFrame) -> list[str]:
    """:func:`fairser.corpora.utt_key` of every row."""
    return [utt_key(c, u) for c, u in zip(manifest["corpus"], manifest["utt_id"], strict=True)]


def pooled_features(features: Any, manifest: pd.DataFrame) -> np.ndarray:
    """Mean over frames of every row's features, layers concatenated -> ``(n, L * D)`` float32.

    :func:`fairser.metrics.pool_frames` (the probe's input reference) over the rows of
    ``manifest``; an empty manifest gives an empty ``(0, L * D)`` array.
    """
    from fairser.metrics import pool_frames

    keys = utterance_keys(manifest)
    if not keys:
        return np.empty((0, int(features.dim) * int(features.n_layers)), dtype=np.float32)
    return pool_frames(features[key] for key in keys)


def labels(manifest: pd.DataFrame, cfg: ExperimentConfig, emotion: str) -> np.ndarray:
    """True labels: 0/1 for ``emotion`` (binary) or class indices of ``cfg.emotions`` (-1 other)."""
    emo = manifest["emotion"].astype("string")
    if cfg.task == "binary":
        return (emo == emotion).fillna(False).to_numpy(dtype=int)
    index = {e: i for i, e in enumerate(cfg.emotions)}
    return np.array([index.get(e, -1) if isinstance(e, str) else -1 for e in emo], dtype=int)


def genders(manifest: pd.DataFrame) -> np.ndarray:
    """The gender column as an object array, ``NA`` for missing values."""
    return manifest["gender"].astype("string").fillna("NA").to_numpy(dtype=object)


def model_outputs(model: FittedModelLike, df: pd.DataFrame, features: Any, *, where: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(proba, y_pred, embeddings, own-head gender or None)`` of ``model`` on ``df``.

    One ``model.outputs`` pass (the FittedModel contract of :class:`Backend`). ``y_pred`` is the
    model's own decision when its outputs carry ``labels`` (e.g. after per-gender thresholds,
    ``thresholds: parity``), else :func:`fairser.decision.decide` on ``proba``; every metric and
    ``predictions.parquet`` use it.

    Raises
    ------
    NonFiniteOutputs
        When a probability or an embedding is NaN or infinite: the fit diverged, and its
        scores would be meaningless (a constant prediction scores UAR 0.5 and dSP 0).
    """
    out = model.outputs(df, features)
    proba = np.asarray(out.proba, dtype=float)
    emb = np.asarray(out.embedding, dtype=np.float32)
    for name, arr in (("probabilities", proba), ("embeddings", emb)):
        if arr.size and not np.isfinite(arr).all():
            raise NonFiniteOutputs(
                f"{where}: the model's {name} are not finite (training diverged); lower "
                "training.lr or check the features for NaN")
    gc = out.attribute
    return proba, decisions(out, proba, where=where), emb, None if gc is None else np.asarray(gc)


def decisions(out: Any, proba: np.ndarray, *, where: str) -> np.ndarray:
    """Hard labels of one outputs pass: ``out.labels`` when the model gives them, else decide.

    Raises
    ------
    NonFiniteOutputs
        ``out.labels`` does not hold one label per row (a broken model).
    """
    given = getattr(out, "labels", None)
    if given is None:
        return np.asarray(decide(proba), dtype=int)
    y_pred = np.asarray(given)
    if y_pred.shape != (len(proba),):
        raise NonFiniteOutputs(f"{where}: the model gives {y_pred.shape} labels for "
                               f"{len(proba)} rows; retrain it")
    return y_pred.astype(int)


def probe_rows(n: int, max_rows: int) -> np.ndarray:
    """The rows the probe uses: all ``n``, or a seeded sorted sample of ``max_rows``."""
    idx = np.arange(n)
    if n > max_rows:
        idx = np.sort(np.random.default_rng(0).choice(idx, max_rows, replace=False))
    return idx


#: Version of the gender-probe protocol a fit's record was scored with (its ``probe_version``):
#: 1 probed every model's embeddings in-sample (records without the key or a
#: ``probe_protocol``), 2 cross-fits the probes of embedding-eraser models. Bump it when the
#: protocol changes, and say in :func:`fairser.experiments.reprobe.needs_reprobe` which fits
#: it changes: their records are then rescored (or refitted) on resume, never mixed in.
PROBE_VERSION = 2

#: Cross-fitted probes train on speakers the fold's eraser never saw (``disjoint`` of
#: :func:`fairser.metrics.probe.refit_per_fold`); False: on the speakers it was refitted on,
#: where the logistic probe is 0.5 by construction.
DISJOINT = True

#: Fewest speakers of each gender a cross-fitted probe is computed with: each probe trains
#: on half a fold's speakers, and with fewer the figure is one or two speakers' quirks (e.g.
#: CASIA's 2 + 2: 0.19 through the eraser, 0.14 on the embeddings before it).
MIN_CROSSFIT_SPEAKERS = 4


def _speakers_per_gender(df: pd.DataFrame) -> pd.Series:
    speakers = pd.Series(df["speaker"].to_numpy(dtype=object))
    return speakers.groupby(pd.Series(genders(df))).nunique().drop("NA", errors="ignore")


def crossfit_note(df: pd.DataFrame) -> str:
    """Why a cross-fitted probe of ``df`` is undefined ("" when it is computed)."""
    per_gender = _speakers_per_gender(df)
    if len(per_gender) >= 2 and per_gender.min() >= MIN_CROSSFIT_SPEAKERS:
        return ""
    return (f"a cross-fitted probe needs {MIN_CROSSFIT_SPEAKERS} speakers of each gender, "
            f"found {', '.join(f'{n} {g}' for g, n in per_gender.items()) or 'none'}")


def probe(backend: Backend, cfg: ExperimentConfig, x: np.ndarray, df: pd.DataFrame, *,
          mlp: bool = False, erased: ErasedProbe | None = None) -> float:
    """Speaker-disjoint gender probe accuracy on ``x`` (NaN when disabled or impossible).

    ``x`` may hold every row of ``df`` or only the :func:`probe_rows` of it (in that order).
    ``mlp``: the MLP probe (``probe_mlp``) on ``probe.mlp_max_rows`` rows instead, NaN unless
    ``probe.mlp`` is on and the backend has one. ``erased``: probe cross-fitted through the
    model's embedding eraser (:class:`~fairser.experiments.crossfit.ErasedProbe`), genders
    weighted equally (``balanced``: an emptied probe would otherwise predict each training
    fold's majority gender, the held-out fold's minority, below chance); ``x`` is then
    ignored.
    """
    if mlp and not (cfg.probe.mlp and backend.mlp_probe is not None):
        return float("nan")
    if not cfg.probe.enabled or len(df) == 0:
        return float("nan")
    idx = probe_rows(len(df), cfg.probe.mlp_max_rows if mlp else cfg.probe.max_rows)
    x_idx = np.arange(len(idx)) if len(x) == len(idx) else idx  # x: every row or those only
    sex = genders(df)[idx]
    speakers = df["speaker"].to_numpy(dtype=object)[idx]
    per_gender = pd.Series(speakers).groupby(pd.Series(sex)).nunique()
    if len(per_gender.drop("NA", errors="ignore")) < 2 or per_gender.min() < 2:
        return float("nan")  # a speaker-disjoint probe needs two speakers of each gender
    if erased is not None and crossfit_note(df.iloc[idx]):
        return float("nan")
    run = backend.mlp_probe if mlp else backend.gender_probe
    if erased is None:
        return float(run(x[x_idx], sensitive_features=sex, groups=speakers))
    from fairser.metrics.probe import refit_per_fold

    per_fold = refit_per_fold(erased.fit, groups=erased.groups[idx], labels=erased.labels[idx],
                              pool_x=erased.pool_x, pool_labels=erased.pool_labels,
                              pool_groups=erased.pool_groups, disjoint=DISJOINT)
    return float(run(erased.raw[idx], sensitive_features=sex, groups=speakers,
                     fold_transform=per_fold, balanced=True))


def probe_figures(backend: Backend, cfg: ExperimentConfig, model: FittedModelLike,
                  df: pd.DataFrame, features: Any, emb: np.ndarray, *, source: pd.DataFrame,
                  target: pd.DataFrame | None) -> tuple[float, float, str]:
    """``(probe, probe_mlp, probe_protocol)`` of ``model`` on the evaluated rows ``df``.

    ``emb``: the model's embeddings of ``df``; ``source`` / ``target``: the rows passed to fit
    (a model with an embedding eraser is probed cross-fitted through it, module docstring).
    """
    erased = (erased_probe_inputs(model, df, features, source=source, target=target)
              if cfg.probe.enabled else None)
    return (probe(backend, cfg, emb, df, erased=erased),
            probe(backend, cfg, emb, df, mlp=True, erased=erased),
            "plain" if erased is None else "cross-fitted")


def probe_notes(df: pd.DataFrame, protocol: str) -> dict[str, str]:
    """``probe_note`` / ``probe_mlp_note`` of a cross-fitted probe left empty ({} otherwise)."""
    from fairser.metrics import NOTE_SUFFIX

    if protocol != "cross-fitted" or not (why := crossfit_note(df)):
        return {}
    return {f"{k}{NOTE_SUFFIX}": why for k in ("probe", "probe_mlp")}


def _per_speaker(df: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, base: dict[str, Any],
                 *, binary: bool) -> list[dict[str, Any]]:
    from fairser.metrics import unweighted_average_recall

    rows = []
    for spk, grp in df.groupby("speaker", sort=True):
        i = grp.index.to_numpy()
        yt, yp = y_true[i], y_pred[i]
        row = {**base, "speaker": str(spk), "gender": str(grp["gender"].iloc[0]), "n": len(i),
               "accuracy": float(np.mean(yt == yp))}
        if binary:
            pos, neg = yt == 1, yt == 0
            row["tpr"] = float(np.mean(yp[pos] == 1)) if pos.any() else float("nan")
            row["fpr"] = float(np.mean(yp[neg] == 1)) if neg.any() else float("nan")
            row["selection_rate"] = float(np.mean(yp == 1))
        row["uar"] = float(unweighted_average_recall(yt, yp)) if len(i) else float("nan")
        rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def score(backend: Backend, cfg: ExperimentConfig, *, y_true: np.ndarray, y_pred: np.ndarray,
          df: pd.DataFrame, base: dict[str, Any], gc_acc: float, probe: float,
          probe_input: float, probe_mlp: float = float("nan"), probe_protocol: str = "plain"
          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The results row and the per-speaker rows of one evaluation.

    ``probe_protocol``: how ``probe`` and ``probe_mlp`` were measured, ``plain`` (on the
    model's embeddings) or ``cross-fitted`` (through the model's embedding eraser refitted
    per probe fold, module docstring); a cross-fitted probe with fewer than
    :data:`MIN_CROSSFIT_SPEAKERS` speakers of a gender is NaN with its reason in
    ``probe_note`` / ``probe_mlp_note``.
    """
    sex = genders(df)
    metrics = backend.evaluate(
        y_true, y_pred, sensitive_features=sex,
        speakers=df["speaker"].to_numpy(dtype=object),
        n_boot=cfg.bootstrap.n_resamples, seed=cfg.bootstrap.seed,
        confidence=cfg.bootstrap.confidence,
        **({} if cfg.task == "binary" else {"labels": list(range(len(cfg.emotions)))}))
    notes = probe_notes(df, probe_protocol)
    row = {**base, **{k: _plain(v) for k, v in metrics.items()}, **notes, "gc_acc": gc_acc,
           "probe": probe, "probe_mlp": probe_mlp, "probe_input": probe_input,
           "probe_protocol": probe_protocol, "n": len(df),
           "n_m": int(np.sum(sex == "M")), "n_f": int(np.sum(sex == "F"))}
    return row, _per_speaker(df.reset_index(drop=True), y_true, y_pred, base,
                             binary=cfg.task == "binary")


def prediction_frame(df: pd.DataFrame, base: dict[str, Any], y_true: np.ndarray,
                     y_pred: np.ndarray, score: np.ndarray | None) -> pd.DataFrame:
    """Per-utterance predictions in the layout of :func:`fairser.metrics.compare_methods`."""
    out = pd.DataFrame({
        "method": base["method"], "emotion": base["emotion"], "seed": base["seed"],
        "corpus": base["corpus"], "role": base["role"], "target": base["target"],
        "condition": base["condition"], "sweep": base["sweep"],
        "utt_id": df["utt_id"].astype(str).to_numpy(),
        "speaker": df["speaker"].astype(str).to_numpy(), "gender": genders(df),
        "y_true": np.asarray(y_true, dtype=int), "y_pred": np.asarray(y_pred, dtype=int)})
    if score is not None and score.ndim == 1 and len(score) == len(df):
        out["score"] = score.astype(float)
    return out


def base_row(spec: FitSpec, corpus: str, role: str, digest: str, fit_s: float
             ) -> dict[str, Any]:
    """The coordinate columns every row of a fit's evaluation on ``corpus`` starts with."""
    base: dict[str, Any] = {
        "method": spec.method, "emotion": spec.emotion, "seed": spec.seed, "corpus": corpus,
        "role": role, "target": spec.target, "condition": spec.condition,
        "sweep": spec.sweep_label, "config_hash": digest,
        "run_id": f"{spec.key}__{digest}", "fit_s": fit_s}
    for key, value in spec.sweep:
        base[f"sweep_{key}"] = value
    return base
