"""Two-stage training: row bookkeeping, streamed batches, samplers, the loop, checkpoints,
devices and DDP, and the fit() API.

Modules: ``config`` (TrainConfig), ``data`` (rows -> Split), ``rows`` (store -> batches),
``norm`` (per-corpus standardisation), ``samplers`` (batch plans, bucketing, sharding),
``anchors`` and ``pseudo`` (stage-2 inputs), ``prepare`` (prepare_fit), ``steps`` (one epoch,
evaluation), ``loop`` (stages, early stopping), ``distributed`` (torchrun/DDP),
``checkpoint``, ``model`` (FittedModel), ``api`` (fit), ``run`` (one YAML run).
"""

from __future__ import annotations

from fairser.methods import METHODS
from fairser.training.api import fit
from fairser.training.config import ModelConfig, TrainConfig
from fairser.training.config_io import coerce_config, load_train_config
from fairser.training.model import FittedModel, Outputs
from fairser.training.prepare import Prepared, prepare_fit

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
