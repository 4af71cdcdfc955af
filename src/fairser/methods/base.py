"""The method interface shared by every training method.

A method decides three things and nothing else: which data it uses (source only, or source and
unlabelled target), how the source emotion loss is weighted per (group, class) cell, and which
extra loss terms stage 2 adds. The training loop owns the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import torch

from fairser.models import NetOutput

__all__ = ["Method", "MethodOptions", "StepContext", "group_table_weights"]


class MethodOptions(Protocol):
    """The options methods read (a :class:`fairser.training.TrainConfig` provides them)."""

    alignment: str
    align_weight: float
    n_anchors: int
    alpha: float
    gsim_margin: float
    gsim_normalize: bool
    gsim_on: str
    fairw_rate: float
    fairw_eps: float


@dataclass(frozen=True)
class StepContext:
    """What a method sees at one stage-2 step.

    Attributes
    ----------
    source, target : NetOutput
        Network outputs of the source and target rows of the mixed batch.
    source_groups, target_groups : torch.Tensor
        (Bs,), (Bt,) attribute group indices, -1 when unknown.
    source_anchors, target_anchors : torch.Tensor or None
        (Bs, T), (Bt, T') anchor index per frame (-1: none); set when alignment is ``anchors``.
    """

    source: NetOutput
    target: NetOutput
    source_groups: torch.Tensor
    target_groups: torch.Tensor
    source_anchors: torch.Tensor | None = None
    target_anchors: torch.Tensor | None = None


class Method:
    """Base class: stage 1 only, unweighted, no extra terms (subclasses change one thing each).

    Parameters
    ----------
    options : MethodOptions
        Training options.
    """

    #: Registry name (config files, results, CLI).
    name: ClassVar[str] = "base"
    #: Display name in tables and plots (the paper's spelling).
    label: ClassVar[str] = "Base"
    #: Reads source gender labels in training (reweighing, fairness weights, adversary).
    uses_groups: ClassVar[bool] = False
    #: Runs stage 2 on mixed source + target batches.
    uses_target: ClassVar[bool] = False
    #: Has a gender classifier behind gradient reversal.
    adversarial: ClassVar[bool] = False

    def __init__(self, options: MethodOptions) -> None:
        self.options = options

    def initial_table(
        self, y: np.ndarray, g: np.ndarray, n_groups: int, n_classes: int
    ) -> np.ndarray:
        """Per-(group, class) weights of the source emotion loss before training, (G, C).

        Parameters
        ----------
        y : numpy.ndarray
            (N,) class index of each source training row.
        g : numpy.ndarray
            (N,) group index, -1 when unknown (such rows always weigh 1).
        n_groups, n_classes : int
            Table shape.
        """
        return np.ones((n_groups, n_classes), dtype=np.float64)

    def update_table(
        self, table: np.ndarray, *, y: np.ndarray, g: np.ndarray, pred: np.ndarray
    ) -> np.ndarray:
        """New table after an epoch, given the epoch's predictions ``pred`` (N,) on the rows."""
        return table

    def stage2_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra, already weighted, loss terms of a stage-2 step (added to the emotion loss)."""
        return {}


def group_table_weights(table: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-row weights ``table[g, y]`` (1 for rows of unknown group)."""
    w = np.ones(len(y), dtype=np.float64)
    known = g >= 0
    w[known] = table[g[known], y[known]]
    return w
