"""Loss functions: weighted emotion losses, L_GSim, CORAL and per-anchor alignment.

Definitions that the paper does not spell out are ours and are documented here as such.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "anchor_alignment_loss",
    "coral_loss",
    "gender_similarity_loss",
    "weighted_bce",
    "weighted_ce",
]


def weighted_bce(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy with per-sample weights, averaged over the batch.

    Parameters
    ----------
    logits : torch.Tensor
        Shape (B,), raw scores of the positive class.
    targets : torch.Tensor
        Shape (B,), 0/1 labels (any dtype).
    weights : torch.Tensor, optional
        Shape (B,), non-negative sample weights (class balance, reweighing, FairW). The loss is
        ``mean(w * bce)``; weights are expected to average about 1 over the training set.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    if weights is not None:
        loss = loss * weights
    return loss.mean()


def weighted_ce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    ignore_index: int = -1,
) -> torch.Tensor:
    """Cross-entropy with per-sample weights; rows whose target is ``ignore_index`` are skipped.

    Parameters
    ----------
    logits : torch.Tensor
        Shape (B, C).
    targets : torch.Tensor
        Shape (B,), integer class indices, ``ignore_index`` for unknown.
    weights : torch.Tensor, optional
        Shape (B,), sample weights.
    ignore_index : int
        Target value meaning "no label".

    Returns
    -------
    torch.Tensor
        Scalar loss, averaged over the labelled rows (0 when none is labelled, still attached to
        the graph so that ``backward`` works).
    """
    keep = targets != ignore_index
    if not bool(keep.any()):
        return logits.sum() * 0.0
    loss = F.cross_entropy(logits[keep], targets[keep].long(), reduction="none")
    if weights is not None:
        loss = loss * weights[keep]
    return loss.mean()


def gender_similarity_loss(
    source: torch.Tensor,
    target: torch.Tensor,
    source_groups: torch.Tensor,
    target_groups: torch.Tensor,
    *,
    margin: float = 1.0,
    normalize: bool = True,
) -> torch.Tensor:
    """Cross-corpus gender contrastive loss L_GSim over every (source, target) pair of a batch.

    For a pair with Euclidean distance ``d`` the loss is ``d**2`` when both utterances have the
    same group (gender) and ``max(0, margin - d)**2`` when they differ; the result is the mean
    over all pairs whose two groups are known (group index >= 0). Pairs never mix two source
    (or two target) rows.

    Parameters
    ----------
    source, target : torch.Tensor
        Shapes (Bs, E) and (Bt, E): embeddings of the source and target rows of a mixed batch.
    source_groups, target_groups : torch.Tensor
        Shapes (Bs,) and (Bt,): integer group indices, negative for unknown.
    margin : float
        Margin ``m`` of the different-group term.
    normalize : bool
        L2-normalise the embeddings first (default). Raw embedding norms are far above 1,
        which makes a margin of 1 meaningless; ``False`` keeps the raw vectors.

    Returns
    -------
    torch.Tensor
        Scalar loss (0, attached to the graph, when no pair has two known groups).
    """
    if normalize:
        source = F.normalize(source, dim=-1)
        target = F.normalize(target, dim=-1)
    ks = source_groups >= 0
    kt = target_groups >= 0
    if not (bool(ks.any()) and bool(kt.any())):
        return (source.sum() + target.sum()) * 0.0
    s, t = source[ks], target[kt]
    # Squared distances via the expansion; clamp guards the sqrt against tiny negatives.
    d2 = (s.pow(2).sum(-1, keepdim=True) + t.pow(2).sum(-1).unsqueeze(0) - 2.0 * s @ t.T).clamp_min(
        0.0
    )
    same = source_groups[ks].unsqueeze(1) == target_groups[kt].unsqueeze(0)
    d = torch.sqrt(d2 + 1e-12)
    loss = torch.where(same, d2, (margin - d).clamp_min(0.0).pow(2))
    return loss.mean()


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL (Sun and Saenko, 2016): distance between source and target covariances.

    ``||C_s - C_t||_F^2 / (4 d^2)`` with unbiased covariances, plus (our addition) the squared
    distance of the means divided by ``d``, so that a shift of the mean is aligned too.

    Parameters
    ----------
    source, target : torch.Tensor
        Shapes (Bs, d) and (Bt, d); each needs at least 2 rows.

    Returns
    -------
    torch.Tensor
        Scalar loss (0, attached to the graph, when either side has fewer than 2 rows).
    """
    if source.shape[0] < 2 or target.shape[0] < 2:
        return (source.sum() + target.sum()) * 0.0
    d = source.shape[1]
    ms, mt = source.mean(0, keepdim=True), target.mean(0, keepdim=True)
    cs = (source - ms).T @ (source - ms) / (source.shape[0] - 1)
    ct = (target - mt).T @ (target - mt) / (target.shape[0] - 1)
    return (cs - ct).pow(2).sum() / (4.0 * d * d) + (ms - mt).pow(2).sum() / d


def anchor_alignment_loss(
    source_frames: torch.Tensor,
    target_frames: torch.Tensor,
    source_anchors: torch.Tensor,
    target_anchors: torch.Tensor,
    n_anchors: int,
) -> torch.Tensor:
    """Align source and target frame embeddings pooled per acoustic anchor.

    Our approximation of phonetic anchors without a phone aligner: every frame carries the
    index of its acoustic anchor cluster (-1 for frames outside voiced, high-energy regions or
    padding). For each anchor seen on both sides of the batch, the frames of that anchor are
    averaged per side; the loss is the mean over those anchors of the squared Euclidean
    distance between the L2-normalised source and target anchor means.

    Parameters
    ----------
    source_frames, target_frames : torch.Tensor
        Shapes (Bs, T, d) and (Bt, T', d): frame-level encoder outputs.
    source_anchors, target_anchors : torch.Tensor
        Shapes (Bs, T) and (Bt, T'): anchor index per frame, -1 to ignore.
    n_anchors : int
        Number of anchor clusters K.

    Returns
    -------
    torch.Tensor
        Scalar loss (0, attached to the graph, when no anchor is shared).
    """
    ms, cs = _anchor_means(source_frames, source_anchors, n_anchors)
    mt, ct = _anchor_means(target_frames, target_anchors, n_anchors)
    shared = (cs > 0) & (ct > 0)
    if not bool(shared.any()):
        return (source_frames.sum() + target_frames.sum()) * 0.0
    diff = F.normalize(ms[shared], dim=-1) - F.normalize(mt[shared], dim=-1)
    return diff.pow(2).sum(-1).mean()


def _anchor_means(
    frames: torch.Tensor, anchors: torch.Tensor, n_anchors: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor mean of frames (K, d) and frame counts (K,)."""
    d = frames.shape[-1]
    flat = frames.reshape(-1, d)
    idx = anchors.reshape(-1).long()
    keep = idx >= 0
    flat, idx = flat[keep], idx[keep]
    sums = flat.new_zeros(n_anchors, d).index_add_(0, idx, flat)
    counts = torch.bincount(idx, minlength=n_anchors).to(flat.dtype)
    return sums / counts.clamp_min(1.0).unsqueeze(1), counts
