"""``pa``: the transfer backbone; stage 2 adds an unsupervised source/target alignment term.

Two alignments (the paper builds on phonetic-anchor transfer, which needs a phone aligner we do
not have):

- ``coral`` (default): match the means and covariances of the source and target shared
  embeddings in each mixed batch (:func:`fairser.models.coral_loss`).
- ``anchors``: frames of voiced, high-energy regions of both corpora are clustered into K
  acoustic anchors before training; stage 2 aligns the per-anchor means of the encoder's
  frame outputs (:func:`fairser.models.anchor_alignment_loss`).
"""

from __future__ import annotations

import torch

from fairser.methods.base import Method, StepContext
from fairser.models import anchor_alignment_loss, coral_loss

__all__ = ["PA", "alignment_term"]


def alignment_term(ctx: StepContext, *, alignment: str, n_anchors: int) -> torch.Tensor | None:
    """The unweighted alignment loss of a step, or None when alignment is ``none``."""
    if alignment == "coral":
        return coral_loss(ctx.source.embedding, ctx.target.embedding)
    if alignment == "anchors":
        if ctx.source_anchors is None or ctx.target_anchors is None:
            raise ValueError("anchors alignment needs anchor assignments in the step context")
        return anchor_alignment_loss(
            ctx.source.frames, ctx.target.frames, ctx.source_anchors, ctx.target_anchors, n_anchors
        )
    if alignment == "none":
        return None
    raise ValueError(f"unknown alignment {alignment!r}")


class PA(Method):
    """Source pre-training, then mixed batches with the alignment term."""

    name = "pa"

    label = "PA"
    uses_target = True

    def stage2_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """``align``: ``align_weight`` times the alignment loss (none for ``none``)."""
        o = self.options
        term = alignment_term(ctx, alignment=o.alignment, n_anchors=o.n_anchors)
        return {} if term is None or o.align_weight == 0 else {"align": o.align_weight * term}
