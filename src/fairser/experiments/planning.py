"""Planning a grid: which fits an experiment needs, their ids, and the checks made before work.

A *fit* is one model trained and scored: one grid point ``method x emotion x seed x target x
condition x sweep point`` (:class:`FitSpec`), or the linear baseline of an ``emotion x target x
condition`` cell. :func:`plan_fits` lists them in the order they run; :func:`fit_id` names each
by its coordinates plus the hash of every option that changes its result, so a rerun skips
finished fits and an edited option re-runs exactly the fits it affects. :func:`check_config`
validates what only the lower layers know (method names, training options and their ranges)
before any corpus is read; ``fairser run --dry-run`` calls the same function.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from fairser._hashing import config_hash
from fairser.device import check_device_name
from fairser.errors import ConfigError
from fairser.experiments.backend import Backend
from fairser.experiments.config import ExperimentConfig, SubsampleSpec
from fairser.experiments.store import safe_name
from fairser.methods import METHODS

__all__ = [
    "BASELINE_METHOD",
    "LEGACY_BASELINE_METHODS",
    "FitSpec",
    "FitTask",
    "check_config",
    "condition_of",
    "fit_id",
    "hashed_training",
    "on_device",
    "plan_fits",
    "plan_tasks",
    "training_options",
]

#: Name of the linear baseline (the floor) in the ``method`` column.
BASELINE_METHOD = "linear-baseline"

#: Earlier names of the linear baseline, found in run folders written before the rename
#: (``linear-probe``, easily confused with the gender probe). Such folders stay readable; a
#: rerun in one recomputes the baseline (under a second per fit) under the new name.
LEGACY_BASELINE_METHODS: tuple[str, ...] = ("linear-probe",)

#: Characters of the config hash kept in fit ids.
_ID_HASH_LENGTH = 12

#: Longest fit id: it names files (``records/ID.json``, ``predictions/ID.parquet``) and a
#: file name has at most 255 bytes on common filesystems.
_MAX_ID_BYTES = 200


@dataclass(frozen=True)
class FitSpec:
    """The coordinates of one fit.

    Attributes
    ----------
    method : str
        Method registry name, or :data:`BASELINE_METHOD`.
    emotion : str
        Positive emotion of the binary task, or ``all`` for multiclass.
    seed : int
        Training seed.
    target : str
        Label of the target corpus.
    condition : str
        Label of the source condition (``source_subsample``).
    sweep : tuple of (str, value)
        Training options overridden at this point (empty without a sweep).
    """

    method: str
    emotion: str
    seed: int
    target: str
    condition: str
    sweep: tuple[tuple[str, Any], ...] = ()

    @property
    def is_baseline(self) -> bool:
        """True for the linear baseline."""
        return self.method == BASELINE_METHOD

    @property
    def sweep_label(self) -> str:
        """``alpha=0.5,beta=1`` or empty."""
        return ",".join(f"{k}={v}" for k, v in self.sweep)

    @property
    def key(self) -> str:
        """Human-readable grid coordinates (file-name safe)."""
        parts = [self.method, self.emotion, f"seed{self.seed}", self.target, self.condition]
        if self.sweep:
            parts.append(self.sweep_label)
        return safe_name("__".join(parts))


@dataclass(frozen=True)
class FitTask:
    """One fit as an executor runs it: its spec, id, config hash and what to keep.

    Attributes
    ----------
    spec : FitSpec
        The coordinates.
    fit_id : str
        ``KEY__HASH``: the record's name in the run folder.
    digest : str
        The config hash.
    keep_embeddings : bool
        Store an embedding sample (the first fit of each method, target, condition and sweep
        point, for the report's projection).
    index : int
        Position in the plan (0-based).
    cost : float
        Relative expected cost, for the order in which parallel executors start fits (longest
        first): 2 for a method with a target stage, 1 for a source-only one, 0.05 for a linear
        baseline. Nothing else depends on it.
    reprobe : bool
        The fit has a record whose gender probes were measured with an older protocol: rescore
        its probes from the stored model (:mod:`fairser.experiments.reprobe`), refit when there
        is none.
    """

    spec: FitSpec
    fit_id: str
    digest: str
    keep_embeddings: bool
    index: int
    cost: float = 1.0
    reprobe: bool = False


def plan_fits(cfg: ExperimentConfig, *, baselines: bool = True) -> list[FitSpec]:
    """Every fit of ``cfg`` in run order.

    The linear baselines come first (one per emotion, target and condition, seed = the first
    seed, when ``linear_baseline`` is on and ``baselines`` is True), then the grid points,
    seed-major so a partial grid covers all methods early: condition, target, seed, emotion,
    method, sweep point.
    """
    plan: list[FitSpec] = []
    for cond in cfg.source_subsample:
        for target in cfg.targets:
            for seed in cfg.seeds:
                for emotion in cfg.grid_emotions():
                    for method in cfg.method_names():
                        for point in cfg.sweep_points(method):
                            plan.append(FitSpec(method=method, emotion=emotion, seed=seed,
                                                target=target.label, condition=cond.label,
                                                sweep=tuple(point.items())))
    if not (baselines and cfg.linear_baseline):
        return plan
    floor: list[FitSpec] = []
    seen: set[tuple[str, str, str]] = set()
    for spec in plan:
        cell = (spec.emotion, spec.target, spec.condition)
        if cell not in seen:
            seen.add(cell)
            floor.append(FitSpec(method=BASELINE_METHOD, emotion=spec.emotion,
                                 seed=cfg.seeds[0], target=spec.target,
                                 condition=spec.condition))
    return floor + plan


def expected_cost(cfg: ExperimentConfig, method: str) -> float:
    """Relative cost of one fit of ``method`` (a method, variant or the linear baseline).

    A coarse rank, enough for parallel executors to start the long fits first so that the
    short ones fill the end (longest-processing-time-first scheduling).
    """
    if method == BASELINE_METHOD:
        return 0.05
    cls = METHODS.get(cfg.base_method(method))
    return 2.0 if cls is not None and cls.uses_target else 1.0


def plan_tasks(cfg: ExperimentConfig) -> list[FitTask]:
    """:func:`plan_fits` with each fit's id, hash and embedding flag."""
    tasks: list[FitTask] = []
    first_seen: set[tuple[str, str, str, str]] = set()
    for index, spec in enumerate(plan_fits(cfg)):
        fid, digest = fit_id(cfg, spec)
        embed_key = (spec.method, spec.target, spec.condition, spec.sweep_label)
        tasks.append(FitTask(spec=spec, fit_id=fid, digest=digest,
                             keep_embeddings=embed_key not in first_seen, index=index,
                             cost=expected_cost(cfg, spec.method)))
        first_seen.add(embed_key)
    return tasks


def training_options(cfg: ExperimentConfig, sweep: Iterable[tuple[str, Any]] = (),
                     method: str | None = None) -> dict[str, Any]:
    """The training options of a fit: ``cfg.training``, the variant's, the sweep point, classes.

    ``method`` names the fit's method; a variant's ``training`` overrides the grid's block,
    and the sweep point overrides both.

    Raises
    ------
    ConfigError
        ``training.task`` or ``training.classes`` contradict the experiment's.
    """
    variant = None if method is None else cfg.variant(method)
    opts = {**cfg.training, **({} if variant is None else variant.training), **dict(sweep)}
    if "task" in opts and opts["task"] != cfg.task:
        raise ConfigError(f"training.task is {opts['task']!r} but the experiment's task is "
                          f"{cfg.task!r}; set it once, at the top level")
    opts["task"] = cfg.task
    if cfg.task == "multiclass":
        if "classes" in opts and list(opts["classes"]) != list(cfg.emotions):
            raise ConfigError("training.classes differs from emotions; list the classes once, "
                              "under `emotions`")
        opts["classes"] = list(cfg.emotions)
    return opts


def on_device(cfg: ExperimentConfig, device: str) -> ExperimentConfig:
    """``cfg`` with extraction and every fit on ``device`` (``fairser run --device``).

    Sets ``features.device``, ``training.device`` and the ``device`` of every variant that
    names one; fit ids do not change (:func:`hashed_training`).

    Raises
    ------
    ConfigError
        ``device`` is not one of ``auto | cpu | cuda | cuda:N | mps``.
    """
    device = check_device_name(device)
    methods = [m if isinstance(m, str) or "device" not in m.training else
               m.model_copy(update={"training": {**m.training, "device": device}})
               for m in cfg.methods]
    return cfg.model_copy(update={"training": {**cfg.training, "device": device},
                                  "features": cfg.features.model_copy(update={"device": device}),
                                  "methods": methods})


def check_config(cfg: ExperimentConfig, backend: Backend) -> None:
    """Validate the parts of ``cfg`` that depend on the lower layers, before any work.

    Builds the training config of every method and sweep point, so every range the training
    layer enforces is checked here too (what ``--dry-run`` calls valid cannot fail on a value).
    Warns once (:class:`fairser.models.PositionalLeakWarning`) when networks of the grid have
    ``n_layers: 0`` with position encodings on.

    Raises
    ------
    ConfigError
        Unknown method, or training / sweep options the training layer rejects.
    """
    names = cfg.method_names()
    unknown = [cfg.base_method(m) for m in names if cfg.base_method(m) not in backend.methods]
    if unknown:
        raise ConfigError(f"methods: unknown method(s) {unknown}; use one of "
                          f"{', '.join(backend.methods)}")
    reserved = {*backend.methods, BASELINE_METHOD, *LEGACY_BASELINE_METHODS}
    for i, name in enumerate(names):
        if cfg.variant(name) is not None and name in reserved:
            raise ConfigError(f"methods.{i}.name: {name!r} is the name of a registered method; "
                              "give the variant another name (e.g. 'recommended')")
    models: dict[str, Any] = {}
    for method in names:
        variant = cfg.variant(method)
        for point in cfg.sweep_points(method):
            try:
                config = backend.train_config(training_options(cfg, point.items(), method))
            except ConfigError as exc:
                if variant is None:
                    raise
                raise ConfigError(f"methods: variant {method!r}: {exc}") from None
            label = method + "".join(f", {k}={v}" for k, v in point.items())
            models[label] = (config.get("model") if isinstance(config, Mapping)
                             else getattr(config, "model", None))
    _warn_positional_leak(models)
    for task in plan_tasks(cfg):
        if len(task.fit_id.encode("utf-8")) > _MAX_ID_BYTES:
            raise ConfigError(f"fit id {task.fit_id[:60]}... is {len(task.fit_id)} characters "
                              f"long, too long for a file name (at most {_MAX_ID_BYTES}); "
                              "shorten the target or condition `name` or the sweep values")


def _warn_positional_leak(models: dict[str, Any]) -> None:
    """One :class:`fairser.models.PositionalLeakWarning` naming every method (and sweep point)
    whose network has ``n_layers: 0`` with position encodings on (:mod:`fairser.models.
    spec_checks`); nothing when none has.
    """
    if all(m is None for m in models.values()):
        return  # nothing to check (and no need to import the torch layers)
    from fairser.models.spec_checks import (
        PositionalLeakWarning,
        positional_leak,
        positional_leak_message,
    )

    leaky = [label for label, model in models.items() if positional_leak(model)]
    if leaky:
        where = "methods " + "; ".join(repr(label) for label in leaky)
        warnings.warn(positional_leak_message(where), PositionalLeakWarning, stacklevel=3)


def condition_of(cfg: ExperimentConfig, label: str) -> SubsampleSpec:
    """The source condition called ``label``."""
    return next(c for c in cfg.source_subsample if c.label == label)


def _fairser_version() -> str:
    try:
        return metadata.version("fairser")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        return "0"


def hashed_training(cfg: ExperimentConfig, spec: FitSpec) -> dict[str, Any]:
    """The training options of a grid fit that enter its id.

    :func:`training_options` (grid block, variant, sweep point) without the options that only
    say where the fit runs (``fairser.training.config.RUNTIME_OPTIONS``: ``device``,
    ``num_workers``, ``cache_mb``), so adding them to a config, or ``fairser run --device``,
    keeps every fit id and a resumed run reuses the finished fits. ``num_threads`` and
    ``precision`` stay in: they can change the floating-point arithmetic of the result.
    """
    from fairser.training.config import RUNTIME_OPTIONS  # imported on use: the training layer

    opts = training_options(cfg, spec.sweep, spec.method)
    return {k: v for k, v in opts.items() if k not in RUNTIME_OPTIONS}


def _hashed_features(cfg: ExperimentConfig) -> dict[str, Any]:
    """The feature options that enter fit ids: frontend, layers, and a non-fp32 precision.

    ``features.device`` and ``features.batch_seconds`` say where and in what batches the same
    features are computed, so they stay out; ``features.precision`` changes the features (it is
    part of the feature store's key) and enters only when not ``fp32``, so the ids of configs
    from before it existed are unchanged.
    """
    out: dict[str, Any] = {"frontend": cfg.features.frontend, "layers": cfg.features.layers}
    if cfg.features.precision != "fp32":
        out["precision"] = cfg.features.precision
    return out


def _payload(cfg: ExperimentConfig, spec: FitSpec) -> dict[str, Any]:
    """Everything that changes the result of ``spec`` (hashed into its id)."""
    target = next(t for t in cfg.targets if t.label == spec.target)
    return {
        "fairser": _fairser_version(),
        "source": cfg.source.model_dump(mode="json"),
        "target": target.model_dump(mode="json"),
        "emotions": cfg.emotions,
        "task": cfg.task,
        "restrict_emotions": cfg.restrict_emotions,
        "features": _hashed_features(cfg),
        "training": ({"linear_baseline_norm": cfg.linear_baseline_norm}
                     if spec.is_baseline else hashed_training(cfg, spec)),
        "condition": condition_of(cfg, spec.condition).model_dump(mode="json"),
        "source_split": cfg.source_split.model_dump(mode="json"),
        "target_split": cfg.target_split.model_dump(mode="json"),
        "bootstrap": cfg.bootstrap.model_dump(mode="json"),
        "probe": cfg.probe.hashed(),
        "spec": [spec.method, spec.emotion, spec.seed],
        # a variant's trained method (absent for a registered one, so its id is unchanged)
        **({} if cfg.variant(spec.method) is None else
           {"variant_of": cfg.base_method(spec.method)}),
    }


def fit_id(cfg: ExperimentConfig, spec: FitSpec) -> tuple[str, str]:
    """``(fit_id, config_hash)`` of a fit: ``KEY__HASH`` and the hash."""
    digest = config_hash(_payload(cfg, spec), length=_ID_HASH_LENGTH)
    return f"{spec.key}__{digest}", digest


def reference_id(cfg: ExperimentConfig) -> str:
    """Id of the input-feature probe record (one per corpus set, split and probe options)."""
    payload = {"features": _hashed_features(cfg),
               "source": cfg.source.model_dump(mode="json"),
               "targets": [t.model_dump(mode="json") for t in cfg.targets],
               "emotions": cfg.emotions, "restrict": cfg.restrict_emotions,
               "probe": {k: v for k, v in cfg.probe.hashed().items()
                         if not k.startswith("mlp")},  # the input probe is linear only
               "source_split": cfg.source_split.model_dump(mode="json"),
               "target_split": cfg.target_split.model_dump(mode="json")}
    return f"reference__{config_hash(payload, length=_ID_HASH_LENGTH)}"
