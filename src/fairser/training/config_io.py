"""Reading training options: a mapping or YAML file into a validated :class:`TrainConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fairser._config_io import read_yaml
from fairser.errors import ConfigError
from fairser.training.config import TrainConfig

__all__ = ["coerce_config", "load_train_config"]


def coerce_config(
    config: TrainConfig | dict[str, Any] | None, *, where: str = "config"
) -> TrainConfig:
    """Turn ``None``, a dict or a :class:`TrainConfig` into a validated :class:`TrainConfig`.

    Raises
    ------
    ConfigError
        One line naming ``where``, the offending key and the problem.
    """
    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return config
    if not isinstance(config, dict):
        raise ConfigError(
            f"{where}: expected a mapping of training options, got {type(config).__name__}"
        )
    try:
        return TrainConfig.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or fix its spelling"
        parts.append(f"key '{loc}': {msg}")
    return "; ".join(parts)


def load_train_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML file into a plain dict (validation is the caller's job).

    Reads through :func:`fairser._config_io.read_yaml`, the one YAML reader.

    Raises
    ------
    ConfigError
        When the file is missing, not UTF-8, not valid YAML (with its line), writes a key
        twice, or does not hold a mapping.
    """
    doc = read_yaml(path, what="config")
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.path}: the top level must be a mapping of keys to values")
    return doc.data
