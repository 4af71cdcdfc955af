"""Experiments: validated YAML configs, the grid runner, the results store, demo and predict.

Typical use::

    from fairser.experiments import load_config, run_experiment
    result = run_experiment(load_config("configs/shared/baseline.yaml"))
    result.results            # one row per run x evaluated corpus
    result.report             # runs/<name>/report.html

The command line equivalents are ``fairser run``, ``fairser demo`` and ``fairser predict``.
"""

from __future__ import annotations

from fairser.experiments.backend import Backend, default_backend
from fairser.experiments.config import (
    ALL_METHODS,
    BootstrapConfig,
    CorpusConfig,
    ExperimentConfig,
    FeatureConfig,
    ProbeConfig,
    SourceSplitConfig,
    SubsampleSpec,
    SweepConfig,
    TargetSplitConfig,
    config_hash,
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
from fairser.experiments.predict import find_models, predict_files
from fairser.experiments.runner import (
    BASELINE_METHOD,
    RESULT_COLUMNS,
    ExperimentResult,
    RunSpec,
    check_config,
    plan_runs,
    pooled_features,
    run_experiment,
    run_id,
)
from fairser.experiments.store import ResultsStore

__all__ = [
    "ALL_METHODS",
    "BASELINE_METHOD",
    "Backend",
    "BootstrapConfig",
    "CorpusConfig",
    "DEMO_SETTINGS",
    "ExperimentConfig",
    "ExperimentResult",
    "FeatureConfig",
    "ProbeConfig",
    "RESULT_COLUMNS",
    "ResultsStore",
    "RunSpec",
    "SourceSplitConfig",
    "SubsampleSpec",
    "SweepConfig",
    "TargetSplitConfig",
    "apply_subsample",
    "check_config",
    "config_hash",
    "default_backend",
    "demo_config",
    "find_models",
    "load_config",
    "parse_config",
    "plan_runs",
    "pooled_features",
    "predict_files",
    "restrict_emotions",
    "run_demo",
    "run_experiment",
    "run_id",
    "source_with_splits",
    "speaker_split",
    "target_roles",
]
