"""fairser: train and audit speech emotion recognition for gender fairness across corpora.

The public API is re-exported here. Names are resolved lazily (PEP 562), so that
``import fairser`` and the CLI start fast and only load torch, sklearn or matplotlib when a
name that needs them is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fairser.errors import (
    AudioError,
    ConfigError,
    CorpusError,
    FairserError,
    FeatureError,
    TrainingError,
)

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    # corpora
    "load_corpus": "fairser.corpora",
    "scan_corpus": "fairser.corpora",
    "utt_key": "fairser.corpora",
    "validate_manifest": "fairser.corpora",
    "generate_pair": "fairser.corpora.synthetic",
    # features
    "FeatureSet": "fairser.features",
    "extract": "fairser.features",
    # metrics
    "compare_methods": "fairser.metrics",
    "evaluate_predictions": "fairser.metrics",
    "gap_null": "fairser.metrics",
    "gender_probe": "fairser.metrics",
    "paired_bootstrap_test": "fairser.metrics",
    "speaker_bootstrap": "fairser.metrics",
    # training
    "METHODS": "fairser.training",
    "FittedModel": "fairser.training",
    "TrainConfig": "fairser.training",
    "fit": "fairser.training",
    # experiments
    "ExperimentConfig": "fairser.experiments",
    "load_config": "fairser.experiments",
    "predict_files": "fairser.experiments",
    "run_demo": "fairser.experiments",
    "run_experiment": "fairser.experiments",
    # report
    "table_markdown": "fairser.report",
    "write_report": "fairser.report",
}

__all__ = [
    "AudioError",
    "ConfigError",
    "ExperimentConfig",
    "CorpusError",
    "FairserError",
    "FeatureError",
    "TrainingError",
    "FeatureSet",
    "FittedModel",
    "METHODS",
    "TrainConfig",
    "__version__",
    "extract",
    "fit",
    "compare_methods",
    "evaluate_predictions",
    "gap_null",
    "gender_probe",
    "load_config",
    "generate_pair",
    "load_corpus",
    "paired_bootstrap_test",
    "predict_files",
    "run_demo",
    "run_experiment",
    "scan_corpus",
    "speaker_bootstrap",
    "table_markdown",
    "utt_key",
    "validate_manifest",
    "write_report",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from fairser.corpora import load_corpus, scan_corpus, utt_key, validate_manifest
    from fairser.corpora.synthetic import generate_pair
    from fairser.experiments import (
        ExperimentConfig,
        load_config,
        predict_files,
        run_demo,
        run_experiment,
    )
    from fairser.features import FeatureSet, extract
    from fairser.metrics import (
        compare_methods,
        evaluate_predictions,
        gap_null,
        gender_probe,
        paired_bootstrap_test,
        speaker_bootstrap,
    )
    from fairser.report import table_markdown, write_report
    from fairser.training import METHODS, FittedModel, TrainConfig, fit


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fairser' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
