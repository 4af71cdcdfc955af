"""``pa-cfa``: PA-Adv plus the cross-corpus gender contrastive loss L_GSim.

Total loss ``L_EC + alpha L_GSim - beta L_GC`` (plus PA's alignment term). L_GSim acts on the
shared embedding (``gsim_on: shared``, the paper's description) or on the gender branch's hidden
layer behind the reversal (``gsim_on: gender_branch``), where pulling the genders apart does
not work against the reversal layer.
"""

from __future__ import annotations

import torch

from fairser.methods.adv import PAAdv
from fairser.methods.base import StepContext
from fairser.models import gender_similarity_loss

__all__ = ["PACFA"]


class PACFA(PAAdv):
    """PA-Adv + L_GSim over (source, target) pairs of each mixed batch."""

    name = "pa-cfa"

    label = "PA-CFA"

    def stage2_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """PA-Adv's terms plus ``gsim``: ``alpha`` times L_GSim."""
        terms = super().stage2_terms(ctx)
        o = self.options
        if o.gsim_on == "shared":
            s, t = ctx.source.embedding, ctx.target.embedding
        else:
            if ctx.source.gender_hidden is None or ctx.target.gender_hidden is None:
                raise ValueError("gsim_on=gender_branch needs a gender head")
            s, t = ctx.source.gender_hidden, ctx.target.gender_hidden
        loss = gender_similarity_loss(
            s,
            t,
            ctx.source_groups,
            ctx.target_groups,
            margin=o.gsim_margin,
            normalize=o.gsim_normalize,
        )
        terms["gsim"] = o.alpha * loss
        return terms
