"""DataLoader workers start by fork on Linux, also inside a spawned ``processes:N`` worker.

A process started with ``spawn`` makes ``spawn`` its own default start method, so without an
explicit context every DataLoader worker of a grid worker re-imported torch and fairser and
unpickled the dataset (seconds per loader, several loaders per fit).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fairser.training.rows import MutableBatchSampler, make_loader, worker_start_method

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fork is the worker start method on Linux only"
)

#: A script (a file, so that its spawned pool worker can import its functions) that builds a
#: loader with one worker inside a ``spawn`` pool worker, as a ``processes:N`` grid does, and
#: prints the worker process's default start method, the loader's, and the batches it served.
SCRIPT = textwrap.dedent(
    """
    import json
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np
    import torch.utils.data

    from fairser.training.rows import MutableBatchSampler, make_loader


    class Rows(list):
        def __getitem__(self, i):
            return np.full(2, float(i), np.float32)


    def job():
        sampler = MutableBatchSampler()
        sampler.batches = [np.array([0, 1]), np.array([2])]
        loader = make_loader(Rows(range(3)), sampler, num_workers=1, pin=False)
        loader.collate_fn = torch.utils.data.default_collate  # the dataset is no StreamDataset
        batches = [b.sum(dim=1).tolist() for b in loader]
        ctx = loader.multiprocessing_context  # None: the process's default
        used = ctx.get_start_method() if ctx else multiprocessing.get_start_method()
        return multiprocessing.get_start_method(), used, batches


    if __name__ == "__main__":
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            print(json.dumps(pool.submit(job).result(timeout=120)))
    """
)


@linux_only
def test_workers_fork_even_where_spawn_is_the_default(tmp_path: Path) -> None:
    assert worker_start_method() == "fork"
    script = tmp_path / "spawned_loader.py"
    script.write_text(SCRIPT, encoding="utf-8")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    default, used, batches = json.loads(res.stdout.strip().splitlines()[-1])
    assert default == "spawn"  # what the loader would have used without its own context
    assert used == "fork"
    assert batches == [[0.0, 2.0], [4.0]]  # the worker really served the batches


class _Rows(list):
    def __getitem__(self, i):
        return np.full(2, float(i), np.float32)


def test_no_workers_no_context() -> None:
    sampler = MutableBatchSampler()
    loader = make_loader(_Rows(range(2)), sampler, num_workers=0, pin=False)
    assert loader.multiprocessing_context is None
