"""DataLoader workers start by fork on Linux, also inside a spawned ``processes:N`` worker.

A process started with ``spawn`` makes ``spawn`` its own default start method, so without an
explicit context every DataLoader worker of a grid worker re-imported torch and fairser and
unpickled the dataset (seconds per loader, several loaders per fit).
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from fairser.training.rows import MutableBatchSampler, make_loader, worker_start_method

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fork is the worker start method on Linux only"
)


class _Rows(list):
    """A picklable stand-in dataset: row i is a length-2 array."""

    def __getitem__(self, i):
        return np.full(2, float(i), np.float32)


def _loader_in_this_process() -> tuple[str, str, list[list[float]]]:
    import torch.utils.data

    sampler = MutableBatchSampler()
    sampler.batches = [np.array([0, 1]), np.array([2])]
    loader = make_loader(_Rows(range(3)), sampler, num_workers=1, pin=False)
    loader.collate_fn = torch.utils.data.default_collate  # the dataset is no StreamDataset
    batches = [b.sum(dim=1).tolist() for b in loader]
    ctx = loader.multiprocessing_context
    return multiprocessing.get_start_method(), ctx.get_start_method(), batches


@linux_only
def test_workers_fork_even_where_spawn_is_the_default() -> None:
    assert worker_start_method() == "fork"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        default, used, batches = pool.submit(_loader_in_this_process).result(timeout=120)
    assert default == "spawn"  # what the loader would have used without its own context
    assert used == "fork"
    assert batches == [[0.0, 2.0], [4.0]]  # the workers really served the batches


def test_no_workers_no_context() -> None:
    sampler = MutableBatchSampler()
    loader = make_loader(_Rows(range(2)), sampler, num_workers=0, pin=False)
    assert loader.multiprocessing_context is None
