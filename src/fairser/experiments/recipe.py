"""The recommended recipe: one method variant, the documented default for new users.

:data:`RECOMMENDED` is the ``methods:`` entry that ``configs/shared/recommended.yaml`` (and its
checks on other targets, the sweeps and the four-class configs) spell out, and that ``fairser
demo`` runs beside the paper's methods: PA without transformer layers (projection and mean
pooling) and without position encodings (with no attention layer they only add the utterance's
length to the pooled vector) and, since session 14, without the embedding layer after pooling
(the pooled encoder output is the shared embedding), per-speaker input normalisation, LEACE erasure
of (corpus, gender) from the shared embedding, per-gender parity thresholds, and strong
regularisation (learning rate 3e-4, AdamW weight decay 100, up to 40 stage-1 epochs; without it
the binary network sat below a strongly regularised logistic regression on the same features,
and in four classes it still sits 0.01-0.04 below one); chosen
on RAVDESS -> ASED (docs/results.md, docs/recipe_search.md sections 9 and 11). Its
options are ``fairser.training.TrainConfig`` options; a test keeps the YAML files and this
mapping identical.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECOMMENDED", "RECOMMENDED_NAME"]

#: Name of the recipe in results, the report and ``predict`` (its default model).
RECOMMENDED_NAME = "recommended"

#: The recipe as a ``methods:`` entry (:class:`fairser.experiments.config.MethodVariant`).
RECOMMENDED: dict[str, Any] = {
    "name": RECOMMENDED_NAME,
    "method": "pa",
    "training": {
        "model": {"n_layers": 0, "positional": False, "embed_dim": 0},
        "input_norm": "per-speaker",
        "erase": "leace",
        "thresholds": "parity",
        "lr": 3.0e-4,
        "weight_decay": 100.0,
        "stage1_epochs": 40,
    },
}
