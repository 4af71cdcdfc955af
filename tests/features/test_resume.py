"""Kill-and-resume: SIGKILL mid-run leaves no corrupt entry and a rerun computes only the rest."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairser.features import extract

FRONTEND_SRC = '''
import os
import signal
import time

import numpy as np

from fairser.features.logmel import LogMelFrontend


class SlowLogMel(LogMelFrontend):
    """log-mel that takes 80 ms per file; a file of exactly 7777 samples kills its process."""

    name = "test-slow-logmel"

    def compute(self, signals):
        time.sleep(0.08)
        if any(len(s) == 7777 for s in signals):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().compute(signals)
'''

CHILD_SRC = '''
import sys

import pandas as pd

sys.path.insert(0, sys.argv[1])
from slowfe import SlowLogMel  # noqa: E402

from fairser.features import extract  # noqa: E402

if __name__ == "__main__":
    manifest = pd.read_csv(sys.argv[2])
    extract(manifest, SlowLogMel(), cache_dir=sys.argv[3], workers=int(sys.argv[4]),
            progress=False)
'''


def _load_frontend_module(folder: Path):
    (folder / "slowfe.py").write_text(FRONTEND_SRC)
    spec = importlib.util.spec_from_file_location("slowfe", folder / "slowfe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entries(store_root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in store_root.glob("features/test-slow-logmel-*/*/*.npy")}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_run_then_resume(workers: int, make_corpus, tmp_path: Path) -> None:
    n = 24
    df = make_corpus([0.3 + 0.01 * i for i in range(n)])
    mod_dir = tmp_path / "mod"
    mod_dir.mkdir()
    module = _load_frontend_module(mod_dir)
    (tmp_path / "child.py").write_text(CHILD_SRC)
    df.to_csv(tmp_path / "manifest.csv", index=False)
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(mod_dir)}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(mod_dir), str(tmp_path / "manifest.csv"),
         str(cache), str(workers)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    try:
        while len(_entries(cache)) < 4:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "child made no progress"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its workers, mid-run
        proc.wait()
    before = _entries(cache)
    assert 4 <= len(before) < n, "the run must be killed mid-way"
    for path in before:  # every published entry is complete and readable
        arr = np.load(path)
        assert arr.dtype == np.float16 and arr.ndim == 3 and np.isfinite(arr).all()

    fs = extract(df, module.SlowLogMel(), cache_dir=cache, progress=False)
    assert fs.stats.n_cached == len(before)
    assert fs.stats.n_computed == n - len(before)
    assert len(fs) == n and fs.bad.empty
    after = _entries(cache)
    assert all(after[p] == before[p] for p in before)  # finished items were not rewritten
    for key in fs:
        assert fs[key].shape[0] == 1 and fs[key].shape[2] == 80


def test_worker_killed_by_one_file_is_reported_and_rest_done(
        make_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import soundfile as sf

    df = make_corpus([0.3, 0.4, 0.5, 0.6, 0.7])
    killer = Path(df.path[0]).with_name("killer.wav")
    sf.write(killer, np.zeros(7777, np.float32) + 0.01, 16000)
    full = pd.concat([df, pd.DataFrame({"corpus": ["syn"], "utt_id": ["killer"],
                                        "path": [str(killer)]})], ignore_index=True)
    module = _load_frontend_module(tmp_path)
    # spawned workers unpickle the frontend by module name
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "slowfe", module)
    fs = extract(full, module.SlowLogMel(), cache_dir=tmp_path / "c", workers=2,
                 progress=False)
    assert len(fs) == 5 and fs.stats.n_computed == 5
    assert list(fs.bad.utt_id) == ["killer"]
    assert "worker process died" in fs.bad.reason[0]
