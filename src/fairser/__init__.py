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

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "ConfigError",
    "CorpusError",
    "FairserError",
    "FeatureError",
    "TrainingError",
    "__version__",
    "generate_pair",
    "load_corpus",
    "scan_corpus",
    "utt_key",
    "validate_manifest",
]
