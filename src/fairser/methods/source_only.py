"""``source-only``: stage 1 alone on the source; no target data at all.

The reference that separates the effect of transfer from the effect of the fairness terms.
"""

from __future__ import annotations

from fairser.methods.base import Method

__all__ = ["SourceOnly"]


class SourceOnly(Method):
    """Train the emotion classifier on the source and stop."""

    name = "source-only"

    label = "Source-only"
    uses_target = False
