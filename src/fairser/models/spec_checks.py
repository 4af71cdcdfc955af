"""Network options that are valid but work against the model: warnings, not errors.

``n_layers: 0`` with ``positional: true`` (the default of :class:`~fairser.models.NetSpec` and
of the training layer's model options): with no transformer layer nothing attends over the
frames, so the sinusoidal position encodings added to them reach the pooled embedding only as
a function of the clip's length (the mean of the encodings over T frames). The classifier then
reads clip length, a corpus and speaker cue, instead of nothing; on RAVDESS -> ASED it cost
accuracy in every configuration tried (docs/recipe_search.md). The default stays ``true``
because it is hashed into the ids of recorded fits; :func:`positional_leak` says when a config
has the combination and :class:`PositionalLeakWarning` is what ``fairser run`` (and
``--dry-run``) warn with, once per experiment config (``fairser.experiments.planning``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["POSITIONAL_FIX", "PositionalLeakWarning", "positional_leak",
           "positional_leak_message"]

#: What to write instead (in the training options of the methods concerned).
POSITIONAL_FIX = "model: {positional: false}"

#: Defaults of the options read when a mapping leaves them out (those of NetSpec and of
#: ``fairser.training.ModelConfig``).
_DEFAULTS = {"n_layers": 1, "positional": True}


class PositionalLeakWarning(UserWarning):
    """``n_layers: 0`` with position encodings on: they only leak clip length (module doc)."""


def _option(model: Any, name: str) -> Any:
    if isinstance(model, Mapping):
        return model.get(name, _DEFAULTS[name])
    return getattr(model, name, _DEFAULTS[name])


def positional_leak(model: Any) -> bool:
    """True when ``model``'s options have ``n_layers: 0`` and ``positional: true``.

    Parameters
    ----------
    model : NetSpec, ModelConfig, mapping or None
        The network options (a mapping may leave out either option: its default applies;
        None: every option at its default).
    """
    if model is None:
        return False
    return int(_option(model, "n_layers")) == 0 and bool(_option(model, "positional"))


def positional_leak_message(where: str) -> str:
    """The one-line warning for the options at ``where`` (e.g. ``methods 'pa'``)."""
    return (f"{where}: model n_layers: 0 with positional: true (the default): no transformer "
            "layer reads the sinusoidal position encodings, so they only add the clip's "
            "length to the pooled embedding (it cost accuracy everywhere, "
            f"docs/recipe_search.md); set `{POSITIONAL_FIX}` in the training options (this "
            "changes the fit ids, i.e. the fits run again)")
