"""Cross-fitted gender probes of a model with an embedding eraser: the probes' inputs.

A model fitted with ``erase: leace|qleace`` and ``erase_on: embedding`` erases (corpus,
gender) from its shared embedding with an eraser fitted on the embeddings of the source
training rows and the target rows passed to fit (their gender, never their emotion;
``fairser.training.api``). Probing the erased embeddings of rows the eraser was fitted on
measures an in-sample artefact: the eraser zeroes the gender cross-covariance over ALL those
rows, so a probe trained on some speakers reads held-out speakers' gender inverted and scores
far below chance; gender is still decodable. (A probe left with nothing to read predicts its
training fold's majority gender, the held-out fold's minority, which is below chance as well:
on CASIA, 4 speakers, that alone gives 0.0; hence the equal gender weights.)

:func:`erased_probe_inputs` gathers what an honest probe needs: the evaluated rows' embeddings
BEFORE the eraser, the eraser's fitting rows (their pre-eraser embeddings, ``corpus/gender``
labels and speakers) and the recipe that refits it (:func:`eraser_refit`). The probes then
refit the eraser in each fold on those rows minus the fold's held-out speakers and minus the
speakers the probe trains on (:func:`fairser.metrics.probe.refit_per_fold` with ``disjoint``;
refitted on the probe's own training speakers, LEACE leaves nothing linear there and the
logistic probe is 0.5 by construction), and weight the genders equally. Every evaluated corpus
of such a model is probed this way; where the eraser saw none of the probed speakers (the
source test split) every refit is the deployed eraser (its fitting rows hold none of them).

The recipe replays ``fairser.training.api._fit_output_levers``: same lever class and options
(strength, method, shrinkage), concept ``corpus/gender`` (:func:`corpus_gender`), and for
LEACE each corpus centred on its fitting rows' mean before the fit (the eraser is applied to
uncentred rows, which only shifts each corpus by a constant). Two approximations, both
harmless on the shipped configs: the corpus means are taken over the rows WITH a gender (the
training code centres over all rows), and the source training rows are those of
``source_train_split`` with an emotion (the training code keeps those of the label space).
With ``target_gender: pseudo`` the eraser was fitted on pseudo genders, the refit uses the
true ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ErasedProbe", "embeddings_before_eraser", "erased_probe_inputs", "eraser_of",
           "eraser_refit", "erases_embedding"]


@dataclass(frozen=True)
class ErasedProbe:
    """What a cross-fitted probe of an embedding eraser reads.

    Attributes
    ----------
    fit : callable
        ``fit(x, labels) -> apply``, ``apply(z, labels) -> erased z`` (:func:`eraser_refit`).
    raw : numpy.ndarray
        ``(n, E)`` embeddings of the evaluated rows before the eraser.
    labels : numpy.ndarray
        ``(n,)`` ``corpus/gender`` of each evaluated row (None where unknown).
    groups : numpy.ndarray
        ``(n,)`` ``corpus/speaker`` of each evaluated row (speaker ids repeat across corpora).
    pool_x : numpy.ndarray
        ``(m, E)`` pre-eraser embeddings of the eraser's fitting rows (gender known).
    pool_labels, pool_groups : numpy.ndarray
        ``(m,)`` their ``corpus/gender`` and ``corpus/speaker``.
    """

    fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray, np.ndarray], Any]]
    raw: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    pool_x: np.ndarray
    pool_labels: np.ndarray
    pool_groups: np.ndarray


def erases_embedding(config: Any) -> bool:
    """True when a training config (``TrainConfig`` or a mapping) fits an embedding eraser.

    ``erase: leace|qleace`` with ``erase_on: embedding`` (its default) or ``both``: such a
    model's probes are cross-fitted.
    """
    def option(name: str, default: str) -> Any:
        if isinstance(config, Mapping):
            return config.get(name, default)
        return getattr(config, name, default)

    return (option("erase", "none") != "none"
            and option("erase_on", "embedding") in ("embedding", "both"))


def eraser_of(model: Any) -> Any:
    """The model's embedding eraser, or None (no levers, or no eraser on the embedding)."""
    return getattr(getattr(model, "levers", None), "embedding_eraser", None)


def eraser_refit(eraser: Any) -> Callable[[np.ndarray, np.ndarray],
                                          Callable[[np.ndarray, np.ndarray], Any]]:
    """The recipe that fitted ``eraser``, as ``fit(x, labels) -> apply(z, labels)``.

    ``labels`` are ``corpus/gender`` strings; a fresh lever of the same class and options is
    fitted on ``x`` (each corpus centred first for LEACE, as in training) and applied through
    :func:`fairser.training.output_levers.apply_embedding_eraser`.
    """
    from fairser.levers import GenderEraser
    from fairser.training.output_levers import apply_embedding_eraser

    kind = type(eraser)
    options = dict(eraser.to_dict()["options"])
    centre = isinstance(eraser, GenderEraser)

    def fit(x: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray, np.ndarray], Any]:
        x = np.array(x, dtype=np.float64)
        labels = np.asarray([str(v) for v in labels], dtype=object)
        if centre:
            corpus = np.asarray([v.rsplit("/", 1)[0] for v in labels], dtype=object)
            for c in np.unique(corpus):
                x[corpus == c] -= x[corpus == c].mean(0)
        lever = kind(**options).fit(x, sensitive_features=labels)

        def apply(z: np.ndarray, z_labels: np.ndarray) -> np.ndarray:
            return apply_embedding_eraser(lever, np.asarray(z, np.float64),
                                          np.asarray(z_labels, dtype=object), what="probe",
                                          warn=False)

        return apply

    return fit


def embeddings_before_eraser(model: Any, rows: pd.DataFrame, features: Any) -> np.ndarray:
    """``(n, E)`` embeddings of ``rows`` before the model's embedding eraser (float64).

    Reads ``Outputs.embedding_raw`` when the training layer provides it; otherwise one
    ``outputs`` pass with the eraser set aside (restored afterwards). The levers' fallback
    warnings of this extra pass are silenced (the scoring pass reports them).
    """
    eraser = eraser_of(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if eraser is None:
            return np.asarray(model.outputs(rows, features).embedding, dtype=np.float64)
        from fairser.training import Outputs

        if "embedding_raw" in getattr(Outputs, "__dataclass_fields__", {}):
            return np.asarray(model.outputs(rows, features).embedding_raw, dtype=np.float64)
        model.levers.embedding_eraser = None
        try:
            return np.asarray(model.outputs(rows, features).embedding, dtype=np.float64)
        finally:
            model.levers.embedding_eraser = eraser


def _gender_rows(rows: pd.DataFrame, attribute: str) -> pd.DataFrame:
    if attribute not in rows.columns:
        return rows.iloc[:0]
    return rows.loc[rows[attribute].notna().to_numpy(dtype=bool)].reset_index(drop=True)


def _split(rows: pd.DataFrame, split: str | None) -> pd.DataFrame:
    if split is None or "split" not in rows.columns:
        return rows.reset_index(drop=True)
    keep = (rows["split"].astype("string").fillna("") == split).to_numpy(dtype=bool)
    return rows.loc[keep].reset_index(drop=True)


def _concept(rows: pd.DataFrame, attribute: str) -> np.ndarray:
    from fairser.training.input_levers import gender_strings
    from fairser.training.output_levers import corpus_gender

    return corpus_gender(rows["corpus"].astype(str).to_numpy(dtype=object),
                         gender_strings(rows, attribute))


def _speakers(rows: pd.DataFrame) -> np.ndarray:
    """``corpus/speaker`` of each row (the utterance id where there is no speaker)."""
    who = rows["speaker"] if "speaker" in rows.columns else rows["utt_id"]
    return np.asarray([f"{c}/{s}" for c, s in zip(rows["corpus"].astype(str), who.astype(str),
                                                   strict=True)], dtype=object)


def erased_probe_inputs(model: Any, df: pd.DataFrame, features: Any, *, source: pd.DataFrame,
                        target: pd.DataFrame | None) -> ErasedProbe | None:
    """Inputs of a cross-fitted probe of ``df`` (None: the model has no embedding eraser).

    Every evaluated corpus of an eraser model is probed this way (the source test split too:
    its speakers are not among the eraser's fitting rows, so the refit on ALL the pool is the
    deployed eraser).

    Parameters
    ----------
    model : FittedModel
        The fitted model (its ``config`` and ``levers``).
    df : pandas.DataFrame
        The evaluated rows.
    features : FeatureSource
        Their features.
    source, target : pandas.DataFrame
        The source manifest and the target rows passed to fit (the eraser's fitting rows are
        the source training split and the target rows of ``target_split``).
    """
    eraser = eraser_of(model)
    if eraser is None or len(df) == 0:
        return None
    cfg = model.config
    attr = cfg.attribute
    tgt = (df.iloc[:0] if target is None
           else _gender_rows(_split(target, cfg.target_split), attr))
    src = _gender_rows(_split(source, cfg.source_train_split), attr)
    if "emotion" in src.columns:
        src = src.loc[src["emotion"].notna().to_numpy(dtype=bool)].reset_index(drop=True)
    raw = embeddings_before_eraser(model, df, features)
    keys = list(zip(df["corpus"].astype(str), df["utt_id"].astype(str), strict=True))
    tgt_keys = list(zip(tgt["corpus"].astype(str), tgt["utt_id"].astype(str), strict=True))
    where = {k: i for i, k in enumerate(keys)}
    if all(k in where for k in tgt_keys):  # transductive: the evaluated rows hold them all
        tgt_x = raw[[where[k] for k in tgt_keys]]
    else:
        tgt_x = embeddings_before_eraser(model, tgt, features)
    src_x = embeddings_before_eraser(model, src, features)
    return ErasedProbe(
        fit=eraser_refit(eraser), raw=raw, labels=_concept(df, attr), groups=_speakers(df),
        pool_x=np.concatenate([src_x, tgt_x]),
        pool_labels=np.concatenate([_concept(src, attr), _concept(tgt, attr)]),
        pool_groups=np.concatenate([_speakers(src), _speakers(tgt)]))
