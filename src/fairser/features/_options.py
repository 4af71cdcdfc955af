"""Typed frontend options: pydantic models with defaults, docstrings and no unknown keys."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from fairser.errors import ConfigError

__all__ = ["FrontendOptions", "parse_options"]

T = TypeVar("T", bound="FrontendOptions")


class FrontendOptions(BaseModel):
    """Base of every frontend's options: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_options(cls: type[T], options: dict[str, Any] | None, *, frontend: str) -> T:
    """Validate ``options`` against ``cls``; raise a one-line :class:`ConfigError` if invalid."""
    try:
        return cls(**(options or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "options"
        allowed = ", ".join(sorted(cls.model_fields)) or "none"
        raise ConfigError(
            f"frontend {frontend}: option {where!r}: {err.get('msg', 'invalid')}; "
            f"allowed options: {allowed}"
        ) from None
