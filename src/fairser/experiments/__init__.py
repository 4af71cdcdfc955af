"""Experiments: validated YAML configs, the grid runner, the results store, demo and predict.

Typical use::

    from fairser.experiments import load_config, run_experiment
    result = run_experiment(load_config("configs/shared/baseline.yaml"))
    result.results            # one row per fit x evaluated corpus
    result.report             # runs/<name>/report.html

The command line equivalents are ``fairser run``, ``fairser demo`` and ``fairser predict``.
"""

from __future__ import annotations

from typing import Any

from fairser.experiments.backend import Backend, FittedModelLike, default_backend
from fairser.experiments.config import (
    BootstrapConfig,
    CorpusConfig,
    ExperimentConfig,
    FeatureConfig,
    MethodVariant,
    ProbeConfig,
    SourceSplitConfig,
    SubsampleSpec,
    SweepConfig,
    TargetSplitConfig,
    load_config,
    parse_config,
)
from fairser.experiments.data import (
    apply_subsample,
    restrict_emotions,
    source_with_splits,
    speaker_split,
    target_roles,
)
from fairser.experiments.demo import DEMO_SETTINGS, demo_config, run_demo
from fairser.experiments.dryrun import DryRun, dry_run
from fairser.experiments.executors import parse_executor
from fairser.experiments.planning import (
    BASELINE_METHOD,
    LEGACY_BASELINE_METHODS,
    FitSpec,
    FitTask,
    check_config,
    fit_id,
    plan_fits,
    plan_tasks,
)
from fairser.experiments.predict import find_models, predict_files, read_predict_manifest
from fairser.experiments.recipe import RECOMMENDED
from fairser.experiments.runner import RESULT_COLUMNS, ExperimentResult, run_experiment
from fairser.experiments.scoring import pooled_features
from fairser.experiments.store import ResultFolderBusy, ResultsStore, RunLock

__all__ = [
    "ALL_METHODS",
    "BASELINE_METHOD",
    "Backend",
    "BootstrapConfig",
    "CorpusConfig",
    "DEMO_SETTINGS",
    "DryRun",
    "ExperimentConfig",
    "ExperimentResult",
    "FeatureConfig",
    "FitSpec",
    "FitTask",
    "FittedModelLike",
    "LEGACY_BASELINE_METHODS",
    "MethodVariant",
    "ProbeConfig",
    "RECOMMENDED",
    "RESULT_COLUMNS",
    "ResultFolderBusy",
    "ResultsStore",
    "RunLock",
    "SourceSplitConfig",
    "SubsampleSpec",
    "SweepConfig",
    "TargetSplitConfig",
    "apply_subsample",
    "check_config",
    "default_backend",
    "demo_config",
    "dry_run",
    "find_models",
    "fit_id",
    "load_config",
    "parse_config",
    "parse_executor",
    "plan_fits",
    "plan_tasks",
    "pooled_features",
    "predict_files",
    "read_predict_manifest",
    "restrict_emotions",
    "run_demo",
    "run_experiment",
    "source_with_splits",
    "speaker_split",
    "target_roles",
]


def __getattr__(name: str) -> Any:
    # ALL_METHODS comes from the method registry, which imports torch: resolve it on use
    if name == "ALL_METHODS":
        from fairser.experiments import config

        return config.ALL_METHODS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
