"""fairser: train and audit speech emotion recognition for gender fairness across corpora.

The public API is re-exported here; everything else lives in private modules.
"""

from __future__ import annotations

from fairser.corpora import load_corpus, scan_corpus, utt_key, validate_manifest
from fairser.corpora.synthetic import generate_pair
from fairser.errors import (
    AudioError,
    ConfigError,
    CorpusError,
    FairserError,
    FeatureError,
    TrainingError,
)
from fairser.metrics import (
    compare_methods,
    evaluate_predictions,
    gender_probe,
    paired_bootstrap_test,
    speaker_bootstrap,
)
from fairser.report import table_markdown, write_report

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "ConfigError",
    "CorpusError",
    "FairserError",
    "FeatureError",
    "TrainingError",
    "__version__",
    "write_report",
    "table_markdown",
    "speaker_bootstrap",
    "paired_bootstrap_test",
    "gender_probe",
    "evaluate_predictions",
    "compare_methods",
    "generate_pair",
    "load_corpus",
    "scan_corpus",
    "utt_key",
    "validate_manifest",
]
