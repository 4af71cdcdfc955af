"""The lower layers an experiment composes, gathered in one replaceable object.

:class:`Backend` names every call the runner makes into corpora, features, training, metrics
and report, and :class:`FittedModelLike` the contract of what ``fit`` returns.
:func:`default_backend` binds the real implementations (imported lazily, so loading a config
never imports torch); tests pass small fakes to exercise the runner's bookkeeping (planning,
skipping, resuming, storing) in milliseconds. A backend is sent to worker processes by the
``processes`` and ``ray`` executors, so its callables must pickle (module-level functions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["Backend", "FittedModelLike", "ModelOutputs", "default_backend"]


class ModelOutputs(Protocol):
    """One pass of a fitted model over a manifest (``fairser.training.Outputs``).

    Attributes
    ----------
    proba : ndarray
        ``(n,)`` P(positive) for a binary task, ``(n, C)`` class probabilities for multiclass.
    embedding : ndarray
        ``(n, E)`` shared embeddings.
    attribute : ndarray or None
        ``(n,)`` gender predicted by the model's own gender head; None without one.
    """

    proba: np.ndarray
    embedding: np.ndarray
    attribute: np.ndarray | None


class FittedModelLike(Protocol):
    """What ``Backend.fit`` returns and ``Backend.load_model`` reads back.

    :class:`fairser.training.FittedModel` is the real one. The runner calls :meth:`outputs`
    once per evaluated corpus (hard labels come from :func:`fairser.decision.decide` on
    ``proba``), :meth:`save` when models are kept, and reads ``history``.
    """

    history: Any

    def outputs(self, manifest: Any, features: Any) -> ModelOutputs:
        """Probabilities, embeddings and own-head gender of every row of ``manifest``."""
        ...

    def save(self, directory: str | Path) -> Any:
        """Write the model into ``directory`` (read back by ``Backend.load_model``)."""
        ...


@dataclass(frozen=True)
class Backend:
    """Callables of the lower layers (signatures as in docs/architecture.md).

    Attributes
    ----------
    load_corpus : callable
        ``load_corpus(spec, *, options) -> manifest``.
    extract : callable
        ``extract(manifest, frontend, *, layers, cache_dir, workers, progress, device,
        precision, batch_seconds) -> FeatureSet`` (``fairser.features.extract``).
    fit : callable
        ``fit(*, source, target, features, method, emotion, config, seed, workdir, progress)
        -> FittedModelLike``; a diverged or impossible fit raises ``TrainingError``.
    train_config : callable
        ``train_config(options: dict) -> config object`` passed to ``fit``; raises
        ``ConfigError`` on unknown or invalid options.
    methods : tuple of str
        Registered method names.
    evaluate : callable
        ``evaluate(y_true, y_pred, *, sensitive_features, speakers, n_boot, seed,
        confidence) -> dict`` (``fairser.metrics.evaluate_predictions``).
    gender_probe : callable
        ``gender_probe(embeddings, *, sensitive_features, groups) -> float``.
    gc_accuracy : callable
        ``gc_accuracy(sensitive_features, attribute_pred) -> float`` (NaN for None).
    table_markdown : callable or None
        ``table_markdown(results) -> str``; None skips ``table.md``.
    write_report : callable or None
        ``write_report(results, out_dir, *, embeddings, title, meta[, comparisons,
        gap_nulls]) -> Path``;
        None skips it.
    compare_methods : callable or None
        ``compare_methods(predictions, *, baseline, n_boot, confidence, seed, progress)``
        (paired tests against a baseline); None skips ``comparisons.csv``.
    gap_nulls : callable or None
        ``gap_nulls(predictions, *, n_resamples, confidence, seed[, labels])``
        (``fairser.metrics.gap_nulls``); None skips ``gap_null.csv``.
    load_model : callable
        ``load_model(dir) -> FittedModelLike`` (``FittedModel.load``).
    mlp_probe : callable or None
        ``mlp_probe(embeddings, *, sensitive_features, groups) -> float``
        (``fairser.metrics.probe.mlp_gender_probe``); None leaves ``probe_mlp`` empty.
    describe_frontend : callable or None
        ``describe_frontend(name, layers) -> FrontendShape`` (frame rate, width, layers kept,
        storage dtype) without loading weights; raises ``ConfigError`` for an unknown frontend
        or layer. None: the dry run skips the frontend check and the store estimate.
    """

    load_corpus: Callable[..., Any]
    extract: Callable[..., Any]
    fit: Callable[..., Any]
    train_config: Callable[[dict[str, Any]], Any]
    methods: tuple[str, ...]
    evaluate: Callable[..., dict[str, Any]]
    gender_probe: Callable[..., float]
    gc_accuracy: Callable[..., float]
    table_markdown: Callable[..., str] | None
    write_report: Callable[..., Any] | None
    load_model: Callable[..., Any]
    compare_methods: Callable[..., Any] | None = None
    describe_frontend: Callable[[str, Any], Any] | None = None
    mlp_probe: Callable[..., float] | None = None
    gap_nulls: Callable[..., Any] | None = None


def train_config(options: dict[str, Any]) -> Any:
    """The real ``Backend.train_config``: a validated ``fairser.training.TrainConfig``."""
    from fairser.training import coerce_config

    return coerce_config(dict(options), where="training")


def describe_frontend(name: str, layers: Any) -> Any:
    """The real ``Backend.describe_frontend``: the shape of a registered frontend."""
    from fairser.errors import ConfigError
    from fairser.experiments.estimate import FrontendShape
    from fairser.features import FRONTENDS, build_frontend, frontend_names

    if name not in FRONTENDS and not name.startswith("hf:"):
        raise ConfigError(f"features.frontend: unknown frontend {name!r}; choose one of "
                          f"{', '.join(frontend_names())}")
    try:
        frontend = build_frontend(name, layers=layers)
    except ConfigError as exc:
        raise ConfigError(f"features.layers: {exc}") from None
    return FrontendShape(name=name, frame_rate=float(frontend.frame_rate),
                         dim=int(frontend.dim), n_layers=len(frontend.layers),
                         dtype=str(frontend.store_dtype))


def default_backend() -> Backend:
    """Bind the real fairser layers."""
    from fairser.corpora import load_corpus
    from fairser.features import extract
    from fairser.metrics import (
        compare_methods,
        evaluate_predictions,
        gap_nulls,
        gc_accuracy,
        gender_probe,
    )
    from fairser.metrics.probe import mlp_gender_probe
    from fairser.report import table_markdown, write_report
    from fairser.training import METHODS, FittedModel, fit

    return Backend(
        load_corpus=load_corpus,
        extract=extract,
        fit=fit,
        train_config=train_config,
        methods=tuple(METHODS),
        evaluate=evaluate_predictions,
        gender_probe=gender_probe,
        gc_accuracy=gc_accuracy,
        table_markdown=table_markdown,
        write_report=write_report,
        load_model=FittedModel.load,
        compare_methods=compare_methods,
        describe_frontend=describe_frontend,
        mlp_probe=mlp_gender_probe,
        gap_nulls=gap_nulls,
    )
