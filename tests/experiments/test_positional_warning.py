"""The config check warns once when a grid's networks read positions with no layer to read them."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
from grid_fakes import FakeLayers

from fairser.experiments import parse_config
from fairser.experiments.planning import check_config
from fairser.models import PositionalLeakWarning

BASE = {"name": "pos", "source": "fake-source:/x", "targets": ["fake-target:/y"],
        "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry"],
        "seeds": [0], "bootstrap": {"n_resamples": 0}}


@pytest.fixture
def backend():
    from fairser.experiments.backend import train_config

    return dataclasses.replace(FakeLayers().backend(), train_config=train_config)


def _warnings(settings, backend) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_config(parse_config({**BASE, **settings}), backend)
    return [w for w in caught if issubclass(w.category, PositionalLeakWarning)]


def test_one_warning_names_every_method_and_the_fix(backend):
    flat = {"model": {"n_layers": 0}}
    got = _warnings({"methods": [
        "source-only",
        {"name": "flat", "method": "pa", "training": flat},
        {"name": "flat-pe", "method": "pa", "training": {"model": {"n_layers": 0,
                                                                    "positional": True}}},
        {"name": "flat-np", "method": "pa", "training": {"model": {"n_layers": 0,
                                                                    "positional": False}}}]},
        backend)
    assert len(got) == 1
    text = str(got[0].message)
    assert "'flat'" in text and "'flat-pe'" in text
    assert "flat-np" not in text and "source-only" not in text
    assert "model: {positional: false}" in text and "\n" not in text


def test_a_grid_wide_setting_and_sweep_points_are_named(backend):
    got = _warnings({"methods": ["pa", "source-only"], "training": {"model": {"n_layers": 0}},
                     "sweep": {"params": {"alpha": [0.1, 1.0]}, "methods": ["pa"]}}, backend)
    assert len(got) == 1
    text = str(got[0].message)
    assert "'pa, alpha=0.1'" in text and "'pa, alpha=1.0'" in text and "'source-only'" in text


def test_no_warning_for_layers_or_without_positions(backend):
    assert _warnings({"methods": ["pa", "source-only"]}, backend) == []
    assert _warnings({"methods": ["pa"], "training": {"model": {"n_layers": 0,
                                                              "positional": False}}},
                     backend) == []
    from fairser.experiments import RECOMMENDED

    assert _warnings({"methods": [RECOMMENDED]}, backend) == []
    assert _warnings({"methods": ["pa"]}, FakeLayers().backend()) == []  # no model options
