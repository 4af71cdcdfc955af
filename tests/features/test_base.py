"""Layer selection and configuration hashing."""

from __future__ import annotations

import pytest

from fairser.errors import ConfigError
from fairser.features.base import config_hash, normalize_layers


@pytest.mark.parametrize(("spec", "expected"), [
    (None, (6,)), (2, (2,)), (-1, (6,)), ([4, 1, 4], (1, 4)), ("all", tuple(range(7))),
    ("2,-1", (2, 6)), ("ALL", tuple(range(7))),
])
def test_normalize_layers(spec, expected) -> None:
    assert normalize_layers(spec, 7, frontend="x") == expected


@pytest.mark.parametrize(("spec", "match"), [
    (7, "out of range"), (-8, "out of range"), ([], "empty"), ("two", "not understood"),
    (2.0, "wrong type"), ([1, "a"], "not an integer"), (True, "wrong type"),
])
def test_normalize_layers_errors(spec, match) -> None:
    with pytest.raises(ConfigError, match=match):
        normalize_layers(spec, 7, frontend="x")


def test_config_hash_is_order_independent_and_sensitive() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
