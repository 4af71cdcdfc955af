"""Two-stage training: data assembly, samplers, the loop, checkpoints and the fit() API."""

from __future__ import annotations

from fairser.methods import METHODS
from fairser.training.api import FittedModel, Outputs, Prepared, fit, prepare_fit
from fairser.training.config import ModelConfig, TrainConfig, coerce_config, load_train_config

__all__ = [
    "METHODS",
    "FittedModel",
    "ModelConfig",
    "Outputs",
    "Prepared",
    "TrainConfig",
    "coerce_config",
    "fit",
    "load_train_config",
    "prepare_fit",
]
