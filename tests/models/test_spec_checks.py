"""``n_layers: 0`` with position encodings is flagged (the default itself is unchanged)."""

from __future__ import annotations

import dataclasses

import pytest

from fairser.models import NetSpec, PositionalLeakWarning, positional_leak
from fairser.models.spec_checks import POSITIONAL_FIX, positional_leak_message


def test_the_defaults_are_unchanged():
    fields = {f.name: f.default for f in dataclasses.fields(NetSpec)}
    assert fields["positional"] is True and fields["n_layers"] == 1  # fit ids depend on them
    assert issubclass(PositionalLeakWarning, UserWarning)


@pytest.mark.parametrize(("options", "leaks"), [
    ({"n_layers": 0}, True),  # positional by default
    ({"n_layers": 0, "positional": True}, True),
    ({"n_layers": 0, "positional": False}, False),
    ({"n_layers": 1}, False),
    ({}, False),
    (None, False),
])
def test_positional_leak_of_mappings(options, leaks):
    assert positional_leak(options) is leaks


def test_positional_leak_of_specs_and_training_configs():
    spec = NetSpec(n_layers_in=1, in_dim=4, n_outputs=1, n_layers=0)
    assert positional_leak(spec)
    assert not positional_leak(dataclasses.replace(spec, positional=False))
    assert not positional_leak(dataclasses.replace(spec, n_layers=2))
    from fairser.training.config import ModelConfig

    assert positional_leak(ModelConfig(n_layers=0))
    assert not positional_leak(ModelConfig(n_layers=0, positional=False))


def test_the_message_names_where_and_the_fix():
    text = positional_leak_message("methods 'flat'")
    assert text.startswith("methods 'flat': ") and POSITIONAL_FIX in text
    assert POSITIONAL_FIX == "model: {positional: false}" and "\n" not in text
