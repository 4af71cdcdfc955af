"""Training methods: one module per method composing shared parts, and their registry.

Adding a method is one new module plus one line in :data:`METHODS`.
"""

from __future__ import annotations

from types import MappingProxyType

from fairser.errors import ConfigError
from fairser.methods.adv import PAAdv
from fairser.methods.base import Method, MethodOptions, StepContext, group_table_weights
from fairser.methods.cfa import PACFA
from fairser.methods.fairw import PAFairW, fairw_update, group_error_rates
from fairser.methods.pa import PA
from fairser.methods.rew import PARew, reweighing_table
from fairser.methods.source_only import SourceOnly

__all__ = [
    "METHODS",
    "Method",
    "MethodOptions",
    "StepContext",
    "fairw_update",
    "get_method",
    "method_label",
    "group_error_rates",
    "group_table_weights",
    "reweighing_table",
]

#: Registry: method name -> class (read-only).
METHODS = MappingProxyType(
    {cls.name: cls for cls in (SourceOnly, PA, PARew, PAFairW, PAAdv, PACFA)}
)


def method_label(name: str) -> str:
    """Display name of a registered method (``name`` itself for unknown names)."""
    cls = METHODS.get(name)
    return cls.label if cls is not None else name


def get_method(name: str) -> type[Method]:
    """Class of the method called ``name``.

    Raises
    ------
    ConfigError
        For an unknown name, listing the known ones.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; use one of: {', '.join(METHODS)}") from None
