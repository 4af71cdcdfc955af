"""The data of a grid, prepared once: corpora, splits, features, and the input-feature probes.

:func:`load_grid_data` loads the source and the targets, keeps the configured emotions, splits
the source (train / dev / test) and each target (adaptation rows / evaluation rows), extracts or
reuses the features of every row, and drops rows without features or without an M/F gender
(with a note). :func:`load_rows` and :func:`check_rows` are the same steps without features,
for the dry run. :class:`GridData` pickles as manifests plus the feature store's paths, so worker
processes receive it once. :func:`input_probes` computes the gender probe on mean-pooled input
features once per corpus (the reference the learned embeddings are compared with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from fairser.errors import ConfigError
from fairser.experiments.backend import Backend
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.data import (
    apply_subsample,
    restrict_emotions,
    source_with_splits,
    target_roles,
)
from fairser.experiments.planning import FitSpec, condition_of, reference_id
from fairser.experiments.scoring import pooled_features, probe, probe_rows, utterance_keys
from fairser.experiments.store import ResultsStore

__all__ = ["GridData", "check_rows", "evaluated_rows", "input_probes", "load_grid_data",
           "load_rows", "source_train"]


@dataclass
class GridData:
    """Rows and features shared by every fit of a grid.

    Attributes
    ----------
    source : DataFrame
        Source rows with a train / dev / test ``split``.
    adapt, evals : dict of str to DataFrame
        Per target label: the rows used unlabelled in training, and the rows evaluated.
    features : FeatureSet
        Features of every row.
    notes : list of str
        What was dropped, for the summary.
    """

    source: pd.DataFrame
    adapt: dict[str, pd.DataFrame]
    evals: dict[str, pd.DataFrame]
    features: Any
    notes: list[str]


def load_rows(cfg: ExperimentConfig, backend: Backend
              ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The source (with its train / dev / test split) and the targets, emotions kept.

    Raises
    ------
    ConfigError
        A corpus has no rows of the configured emotions, or two corpora share a corpus name
        (their utterance keys would collide).
    CorpusError
        From the corpus layer and the source split.
    """
    source = backend.load_corpus(cfg.source.spec, options=dict(cfg.source.options) or None)
    targets = {t.label: backend.load_corpus(t.spec, options=dict(t.options) or None)
               for t in cfg.targets}
    if cfg.restrict_emotions:
        source = restrict_emotions(source, cfg.emotions)
        targets = {k: restrict_emotions(v, cfg.emotions) for k, v in targets.items()}
    seen: dict[str, str] = {}
    for where, corpus, df in [("source", cfg.source, source),
                              *[(f"targets.{i}", t, targets[t.label])
                                for i, t in enumerate(cfg.targets)]]:
        if df.empty:
            raise ConfigError(f"{where}: corpus {corpus.label}: no rows with emotions "
                              f"{cfg.emotions}; check `emotions` against the corpus's labels")
        for name in sorted(set(df["corpus"].astype(str))):
            if name in seen:
                raise ConfigError(
                    f"{where}: {corpus.spec}: its corpus name {name!r} is also that of "
                    f"{seen[name]}, so utterance keys would collide; the target must be "
                    "another corpus than the source (and than the other targets)")
            seen[name] = f"{where} ({corpus.spec})"
    return source_with_splits(source, cfg.source_split), targets


def _with_gender(df: pd.DataFrame) -> np.ndarray:
    return df["gender"].isin(["M", "F"]).fillna(False).to_numpy(dtype=bool)


def check_rows(cfg: ExperimentConfig, source: pd.DataFrame,
               targets: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What the run checks on the rows before training, without features (the dry run).

    Every target's adaptation / evaluation split and every fit's source condition are built
    once, so a config that passes cannot fail on them later.

    Returns
    -------
    dict of str to DataFrame
        The adaptation rows of each target.

    Raises
    ------
    ConfigError, CorpusError
        As the run would.
    """
    adapt = {}
    for label, df in targets.items():
        adapt[label], _ = target_roles(df.loc[_with_gender(df)].reset_index(drop=True),
                                       cfg.target_split)
    kept = source.loc[_with_gender(source)].reset_index(drop=True)
    for cond in cfg.source_subsample:
        for emotion in cfg.grid_emotions():
            apply_subsample(kept, cond, emotion=None if emotion == "all" else emotion)
    return adapt


def load_grid_data(cfg: ExperimentConfig, backend: Backend, *, progress: bool,
                   console: Console) -> GridData:
    """Load, filter and split the corpora of ``cfg`` and extract their features.

    Raises
    ------
    ConfigError
        A corpus has no rows of the configured emotions, or two corpora share a name.
    CorpusError, FeatureError
        From the corpus and feature layers.
    """
    notes: list[str] = []
    source, targets = load_rows(cfg, backend)
    everything = pd.concat([source, *targets.values()], ignore_index=True)
    console.log(f"features: {cfg.features.frontend} layers={cfg.features.layers} for "
                f"{len(everything)} utterances")
    fc = cfg.features
    features = backend.extract(everything, fc.frontend, layers=fc.layers,
                               cache_dir=fc.cache_dir, workers=fc.workers, progress=progress,
                               device=fc.device, precision=fc.precision,
                               batch_seconds=fc.batch_seconds)
    bad = getattr(features, "bad", None)

    def keep(df: pd.DataFrame, label: str) -> pd.DataFrame:
        present = np.array([k in features for k in utterance_keys(df)], dtype=bool)
        has_gender = _with_gender(df)
        n_feat, n_gender = int((~present).sum()), int((present & ~has_gender).sum())
        if n_feat:
            notes.append(f"{label}: {n_feat} utterance(s) without features skipped "
                         "(see the feature store's bad list)")
        if n_gender:
            notes.append(f"{label}: {n_gender} utterance(s) without M/F gender skipped")
        return df.loc[present & has_gender].reset_index(drop=True)

    if bad is not None and len(bad):
        console.log(f"[yellow]{len(bad)} file(s) could not be featurised; they are skipped")
    source = keep(source, cfg.source.label)
    adapt, evals = {}, {}
    for label, df in targets.items():
        a, e = target_roles(keep(df, label), cfg.target_split)
        adapt[label], evals[label] = a, e
    return GridData(source=source, adapt=adapt, evals=evals, features=features, notes=notes)


def source_train(data: GridData, cfg: ExperimentConfig, spec: FitSpec) -> pd.DataFrame:
    """The source rows of a fit: every split, its condition's subsample applied to train."""
    cond = condition_of(cfg, spec.condition)
    return apply_subsample(data.source, cond,
                           emotion=None if spec.emotion == "all" else spec.emotion)


def _test_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["split"] == "test").fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)


def evaluated_rows(cfg: ExperimentConfig, data: GridData, spec: FitSpec
                   ) -> list[tuple[str, str, pd.DataFrame]]:
    """``(corpus, role, rows)`` a fit is scored on: the source test split, then the target."""
    return [(cfg.source.label, "source", _test_rows(data.source)),
            (spec.target, "target", data.evals[spec.target])]


def input_probes(cfg: ExperimentConfig, backend: Backend, data: GridData, store: ResultsStore,
                 console: Console) -> dict[str, float]:
    """Gender probe on mean-pooled input features, once per corpus (cached in the store).

    Source: every source row (all splits); target: its evaluation rows.
    """
    rid = reference_id(cfg)
    if store.has(rid):
        return store.load(rid)["probe_input"]
    out: dict[str, float] = {}
    if cfg.probe.enabled and cfg.probe.reference:
        corpora = [(cfg.source.label, data.source)] + list(data.evals.items())
        for label, df in corpora:
            rows = df.iloc[probe_rows(len(df), cfg.probe.max_rows)]  # pool only those
            out[label] = probe(backend, cfg, pooled_features(data.features, rows), df)
            console.log(f"input-feature gender probe on {label}: {out[label]:.3f}")
    store.save(rid, {"probe_input": out, "config_hash": rid.rsplit("__", 1)[1]})
    return out
