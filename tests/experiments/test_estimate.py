"""Dry-run estimates: feature-store size and peak memory of a fit, by their formulas."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from grid_fakes import FakeLayers

from fairser.experiments import parse_config
from fairser.experiments.dryrun import dry_run
from fairser.experiments.estimate import (
    TRAINING_OVERHEAD,
    FrontendShape,
    fit_memory,
    fit_rows,
    human_bytes,
    store_bytes,
)

LOGMEL = FrontendShape(name="logmel", frame_rate=100.0, dim=80, n_layers=1)


def test_store_bytes_counts_frames_header_and_blocks():
    # 1.0 s -> 100 frames x 80 x 2 B + 128 = 16128 -> 4 blocks; 0.5 s -> 8128 -> 2 blocks
    assert store_bytes(np.array([1.0, 0.5]), LOGMEL) == (4 + 2) * 4096
    # 0.001 s still has one frame; NaN durations count as one frame
    assert store_bytes(np.array([0.001, np.nan]), LOGMEL) == 2 * 4096
    whisper_all = FrontendShape(name="whisper-base", frame_rate=50.0, dim=512, n_layers=7)
    # 10 s -> 500 frames x 7 x 512 x 2 B = 3,584,000 B + 128 -> 876 blocks
    assert store_bytes(np.array([10.0]), whisper_all) == 876 * 4096
    functionals = FrontendShape(name="egemaps-functionals", frame_rate=0.0, dim=88,
                                n_layers=1, dtype="float32")
    assert store_bytes(np.array([3.0, 9.0]), functionals) == 2 * 4096


def test_fit_memory_terms():
    options = {"batch_size": 10, "eval_batch_size": 30, "frame_stride": 4, "max_frames": 96,
               "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32,
                         "embed_dim": 8, "gc_hidden": 4}}
    mem = fit_memory(rows=100, longest_s=2.0, shape=LOGMEL, options=options)
    # 2 s -> 200 frames -> 50 after stride 4 (under the cap of 96)
    assert mem.frames == 50 and mem.rows == 100
    inputs = 3 * 10 * 50 * 80 * 4
    acts = 10 * 50 * (8 * 16 + 2 * 32) * 4 + 10 * 2 * 50 * 50 * 4 * 2 + 10 * 50 * 16 * 4 * 4
    assert mem.train == 2 * (inputs + acts)
    assert mem.evaluate == 3 * 30 * 50 * 80 * 4
    assert mem.total == max(mem.train, mem.evaluate) + mem.params + TRAINING_OVERHEAD
    # streaming: nothing grows with the rows
    assert fit_memory(rows=10**6, longest_s=2.0, shape=LOGMEL, options=options).total == \
        mem.total
    capped = fit_memory(rows=100, longest_s=60.0, shape=LOGMEL, options=options)
    assert capped.frames == 96  # the cap
    no_head = fit_memory(rows=100, longest_s=2.0, shape=LOGMEL, options=options,
                         adversarial=False)
    assert no_head.params < mem.params


def test_fit_rows_and_human_bytes():
    source = pd.DataFrame({"split": ["train", "dev", "test"], "duration_s": [1.0, 9.0, 20.0]})
    adapt = pd.DataFrame({"duration_s": [2.0, 3.0]})
    assert fit_rows(source, adapt) == (4, 9.0)  # the test rows are not held by the fit
    assert human_bytes(999) == "999 B" and human_bytes(1.5e9) == "1.5 GB"


def test_msp_podcast_sized_manifest_is_estimated_quickly():
    rng = np.random.default_rng(0)
    durations = rng.uniform(2.75, 11.0, 151_000)
    start = time.perf_counter()
    size = store_bytes(durations, FrontendShape(name="whisper-base", frame_rate=50.0, dim=512,
                                                n_layers=1))
    assert time.perf_counter() - start < 2.0
    expected = durations.sum() * 50 * 512 * 2  # data alone, without headers and blocks
    assert expected < size < expected * 1.05


def test_dry_run_on_fake_layers_counts_fits_and_checks_rows(small_settings):
    cfg = parse_config(small_settings)
    found = dry_run(cfg, FakeLayers().backend(), check_roots=False)
    assert (found.n_grid, found.n_fits) == (8, 10)
    assert [c[0] for c in found.corpora] == ["fake-source", "fake-target"]
    assert found.store is None and found.memory is None  # the fake cannot describe a frontend
    assert found.lines()[0] == "10 fits (8 runs + 2 linear baselines)"
    bad = parse_config({**small_settings, "target_split": {"mode": "speakers",
                                                           "eval_speakers_per_gender": 2}})
    with pytest.raises(Exception, match="leaves none to adapt on"):
        dry_run(bad, FakeLayers().backend(), check_roots=False)
    twice = parse_config({**small_settings, "targets": [
        "fake-target:/y", {"spec": "fake-target:/z", "name": "again"}]})
    with pytest.raises(Exception, match=r"targets.1: fake-target:/z: its corpus name 'tgt' is "
                                        r"also that of targets.0 \(fake-target:/y\)"):
        dry_run(twice, FakeLayers().backend(), check_roots=False)
