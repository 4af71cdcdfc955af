"""``pa-adv``: PA plus a gender classifier behind gradient reversal, on both corpora.

In stage 2 the gender classifier GC learns the attribute of the source and target rows of each
mixed batch (target attribute labels, or pseudo labels); the reversal layer in front of it
(coefficient beta, see :func:`fairser.models.beta_at`) makes the shared encoder maximise that
loss, i.e. the ``- beta L_GC`` term.
"""

from __future__ import annotations

import torch

from fairser.methods.base import StepContext
from fairser.methods.pa import PA
from fairser.models import weighted_ce

__all__ = ["PAAdv", "attribute_loss"]


def attribute_loss(ctx: StepContext) -> torch.Tensor:
    """Cross-entropy of the gender head on every row of known group in the mixed batch."""
    if ctx.source.gender_logits is None or ctx.target.gender_logits is None:
        raise ValueError("the network has no gender head; build it with n_groups > 0")
    logits = torch.cat([ctx.source.gender_logits, ctx.target.gender_logits])
    groups = torch.cat([ctx.source_groups, ctx.target_groups])
    return (
        weighted_ce(logits, groups, ignore_index=-1)
        if bool((groups >= 0).any())
        else (logits.sum() * 0.0)
    )


class PAAdv(PA):
    """PA + adversarial gender classifier."""

    name = "pa-adv"

    label = "PA-Adv"

    uses_groups = True
    adversarial = True

    def stage2_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """PA's terms plus ``gc``: the gender loss behind the reversal layer."""
        terms = super().stage2_terms(ctx)
        terms["gc"] = attribute_loss(ctx)
        return terms
