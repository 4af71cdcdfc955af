"""The levers a fitted model carries, and those acting on its embeddings and decisions.

:class:`ModelLevers` holds every lever fitted with a model (per-speaker norm, input or
embedding eraser, group thresholds), saves each as one safetensors file
(:func:`fairser.levers.save_lever`) in the model folder's ``levers/`` and lists them in
``model.json``. This module also owns what happens after the loop:

- ``erase_on: embedding``: the eraser is fitted on the shared embeddings of the source
  training rows and the lever target rows (with their GENDER labels) and the emotion head is
  refitted on the erased source training embeddings (:func:`refit_head`: full-batch AdamW on
  the head alone, in eval mode, from its trained weights: deterministic);
- ``self_train``: the emotion head refitted on the source training embeddings plus target rows
  pseudo-labelled by its own scores, chosen within each gender (:func:`self_train_head`);
- ``thresholds: parity``: :class:`fairser.levers.GroupThresholds` fitted on the model's scores
  on the lever target rows (unlabelled) by gender;
- :func:`parity_gap`: the demographic-parity gap that ``selection: target-parity`` penalises.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairser.decision import decide
from fairser.levers import GroupThresholds, QuadraticGenderEraser, load_lever, save_lever
from fairser.models import FairSERNet
from fairser.models.losses import weighted_bce, weighted_ce

__all__ = [
    "ModelLevers",
    "apply_embedding_eraser",
    "corpus_gender",
    "decide_labels",
    "parity_gap",
    "pseudo_labels",
    "refit_head",
    "self_train_head",
]

_FILES = {
    "speaker_norm": "speaker-norm.safetensors",
    "input_eraser": "input-eraser.safetensors",
    "embedding_eraser": "embedding-eraser.safetensors",
    "thresholds": "group-thresholds.safetensors",
}

#: Head refit: full-batch steps and learning rate.
REFIT_STEPS, REFIT_LR = 300, 1e-2


@dataclass
class ModelLevers:
    """The fitted levers of one model (each None when its option is off)."""

    speaker_norm: Any = None
    input_eraser: Any = None
    embedding_eraser: Any = None
    thresholds: GroupThresholds | None = None

    def listing(self) -> dict[str, str]:
        """Lever name -> file (relative to the model folder), for ``model.json``."""
        return {
            f.name: f"levers/{_FILES[f.name]}"
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    def save(self, directory: Path) -> dict[str, str]:
        """Write every lever into ``directory/levers``; returns :meth:`listing`."""
        listing = self.listing()
        for name, rel in listing.items():
            save_lever(getattr(self, name), Path(directory) / rel)
        return listing

    @classmethod
    def load(cls, directory: Path, listing: dict[str, str] | None) -> ModelLevers:
        """Read the levers listed in ``model.json`` (none for folders from before levers)."""
        out = cls()
        for name, rel in (listing or {}).items():
            if name not in _FILES:
                raise KeyError(f"unknown lever {name!r} in model.json")
            setattr(out, name, load_lever(Path(directory) / rel))
        return out


def _known(groups: np.ndarray | None, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, bool)
    return np.asarray([g is not None for g in groups], dtype=bool)


def corpus_gender(corpora: np.ndarray, genders: np.ndarray | None) -> np.ndarray:
    """``corpus/gender`` of each row (None where the gender is unknown): the concept the
    embedding erasers remove (each corpus's genders made alike)."""
    if genders is None:
        return np.full(len(corpora), None, dtype=object)
    return np.asarray(
        [None if g is None else f"{c}/{g}" for c, g in zip(corpora, genders, strict=True)],
        dtype=object,
    )


def apply_embedding_eraser(
    eraser: Any, emb: np.ndarray, groups: np.ndarray | None, *, what: str, warn: bool = True
) -> np.ndarray:
    """Erased embeddings (float64); ``groups``: :func:`corpus_gender` of each row. A quadratic
    eraser leaves rows without a (corpus, gender) it was fitted on as they are, with one
    warning."""
    if not isinstance(eraser, QuadraticGenderEraser):
        return eraser.transform(emb).astype(np.float64)
    known = _known(groups, len(emb))
    g = np.asarray(
        [
            "\0" if not k else str(v)
            for v, k in zip(groups if groups is not None else [None] * len(emb), known, strict=True)
        ],
        dtype=object,
    )
    out = eraser.transform(emb, groups=g).astype(np.float64)
    if warn and eraser.last_unchanged:
        warnings.warn(
            f"{what}: erase qleace needs each row's gender (of a corpus it was fitted on); "
            f"{eraser.last_unchanged} row(s) without one keep their embeddings unerased",
            UserWarning,
            stacklevel=3,
        )
    return out


def head_scores(net: FairSERNet, emb: np.ndarray, binary: bool) -> np.ndarray:
    """Scores of the emotion head on given embeddings (float64)."""
    net.eval()
    dev = next(net.parameters()).device
    with torch.inference_mode():
        logits, _ = net.emotion(torch.from_numpy(np.asarray(emb, np.float32)).to(dev))
        if binary:
            return torch.sigmoid(logits.squeeze(-1).float()).cpu().numpy().astype(np.float64)
        return torch.softmax(logits.float(), -1).cpu().numpy().astype(np.float64)


def refit_head(
    net: FairSERNet,
    emb: np.ndarray,
    y: np.ndarray,
    *,
    class_weights: np.ndarray,
    binary: bool,
    weight_decay: float,
) -> dict[str, float]:
    """Refit the emotion head on (erased) source training embeddings, in place.

    Full-batch AdamW (:data:`REFIT_STEPS` steps, lr :data:`REFIT_LR`) from the trained weights,
    head in eval mode (no dropout): no randomness, so the same inputs give the same head.
    """
    head = net.emotion
    dev = next(net.parameters()).device
    x = torch.from_numpy(np.asarray(emb, np.float32)).to(dev)
    yt = torch.from_numpy(np.asarray(y, np.int64)).to(dev)
    w = torch.from_numpy(np.asarray(class_weights, np.float32)).to(dev)[yt]
    opt = torch.optim.AdamW(head.parameters(), lr=REFIT_LR, weight_decay=weight_decay)
    head.eval()
    first = last = float("nan")
    with torch.enable_grad():
        for step in range(REFIT_STEPS):
            opt.zero_grad()
            logits, _ = head(x)
            if binary:
                loss = weighted_bce(logits.squeeze(-1), yt, w)
            else:
                loss = weighted_ce(logits, yt, w)
            loss.backward()
            opt.step()
            if step == 0:
                first = float(loss.detach())
            last = float(loss.detach())
    net.eval()
    return {"loss_first": first, "loss_last": last, "steps": REFIT_STEPS}


def pseudo_labels(
    scores: np.ndarray, genders: np.ndarray, *, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to pseudo-label and their labels, chosen within each gender by the scores alone.

    Binary (``scores`` (n,)): the ``fraction / 2`` highest-scored rows of each gender are
    positives and the ``fraction / 2`` lowest negatives. Multiclass ((n, C)): for each class,
    the ``fraction / C`` rows of each gender predicted as that class with the highest score.
    Rows of a missing gender (None) are never chosen. Returns (row indices, labels).
    """
    scores = np.asarray(scores, np.float64)
    genders = np.asarray(genders, dtype=object)
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for g in sorted({v for v in genders.tolist() if v is not None}):
        idx = np.flatnonzero(genders == g)
        if scores.ndim == 1:
            k = int(len(idx) * fraction / 2)
            if k == 0:
                continue
            order = idx[np.argsort(scores[idx], kind="stable")]
            rows += [order[-k:], order[:k]]
            labels += [np.ones(k, np.int64), np.zeros(k, np.int64)]
            continue
        n_classes = scores.shape[1]
        k = int(len(idx) * fraction / n_classes)
        pred = scores[idx].argmax(1)
        for c in range(n_classes):
            mine = idx[pred == c]
            top = mine[np.argsort(scores[mine, c], kind="stable")][-k:] if k else mine[:0]
            rows.append(top)
            labels.append(np.full(len(top), c, np.int64))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(labels)


def self_train_head(
    net: FairSERNet,
    emb_source: np.ndarray,
    y_source: np.ndarray,
    emb_target: np.ndarray,
    genders: np.ndarray,
    *,
    fraction: float,
    rounds: int,
    class_weights: np.ndarray,
    binary: bool,
    weight_decay: float,
) -> dict[str, Any]:
    """Target self-training of the emotion head, in place (``self_train``).

    Each round scores the target embeddings with the current head, takes
    :func:`pseudo_labels` (within each gender: no gender gets more pseudo-positives than
    another) and refits the head (:func:`refit_head`, deterministic) on the source training
    embeddings with their labels plus the chosen target embeddings with their pseudo labels.
    Target emotion labels are never read.
    """
    record: dict[str, Any] = {"fraction": fraction, "rounds": []}
    for _ in range(rounds):
        scores = head_scores(net, emb_target, binary)
        idx, pseudo = pseudo_labels(scores, genders, fraction=fraction)
        fit = refit_head(
            net,
            np.concatenate([emb_source, emb_target[idx]]),
            np.concatenate([np.asarray(y_source, np.int64), pseudo]),
            class_weights=class_weights,
            binary=binary,
            weight_decay=weight_decay,
        )
        counts = np.bincount(pseudo, minlength=2 if binary else scores.shape[1])
        record["rounds"].append({"rows": int(len(idx)), "per_class": counts.tolist(), **fit})
    return record


def decide_labels(
    proba: np.ndarray,
    thresholds: GroupThresholds | None,
    groups: np.ndarray | None,
    *,
    what: str,
    warn: bool = True,
) -> np.ndarray:
    """Final labels: :func:`fairser.decision.decide`, with the group thresholds when fitted.

    Rows of a missing gender, or one ``thresholds`` did not see, get the plain rule (one
    warning counting them).
    """
    if thresholds is None:
        return decide(proba)
    n = len(proba)
    known = _known(groups, n)
    g = np.asarray(
        [
            str(v) if k else "\0"
            for v, k in zip(groups if groups is not None else [None] * n, known, strict=True)
        ],
        dtype=object,
    )
    plain = int((~np.isin(g, thresholds.groups)).sum())
    if warn and plain:
        warnings.warn(
            f"{what}: thresholds parity: {plain} of {n} row(s) have no gender the thresholds "
            f"were fitted for ({thresholds.groups}); they get the plain decision rule",
            UserWarning,
            stacklevel=3,
        )
    return thresholds.predict(proba, groups=g)


def parity_gap(labels: np.ndarray, groups: np.ndarray, n_classes: int) -> float:
    """Largest gap between groups' positive rates (binary) or per-class rates (multiclass).

    ``groups`` holds a group per row (None: skipped); groups with no row are ignored. NaN
    with fewer than two groups.
    """
    known = _known(groups, len(labels))
    names = sorted({str(g) for g in groups[known]}) if known.any() else []
    if len(names) < 2:
        return float("nan")
    g = np.asarray([str(v) for v in groups[known]], dtype=object)
    lab = np.asarray(labels)[known]
    classes = [1] if n_classes == 2 else list(range(n_classes))
    rates = np.asarray([[float((lab[g == n] == c).mean()) for c in classes] for n in names])
    return float((rates.max(0) - rates.min(0)).max())
