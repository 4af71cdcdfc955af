"""``processes:N`` workers end with their grid: a killed parent leaves no orphan fitting on.

A small grid runs with ``processes:2`` in a child Python process on the fake layers; once both
workers are inside a (long) fit the grid's process is killed (SIGKILL) or terminated (SIGTERM),
and the workers must be gone within seconds. With SIGTERM the grid stops in one line with exit
code 143, the finished fits keep their records, and a rerun resumes from them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grid_fakes import FakeLayers
from rich.console import Console

from fairser.experiments import parse_config, run_experiment
from fairser.experiments.worker_lifetime import GridTerminated, die_with_parent

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

HERE = Path(__file__).resolve().parent

#: 2 methods x 2 emotions x 1 seed + 2 linear baselines = 6 fits.
SETTINGS = {"name": "orphans", "source": "fake-source:/x", "targets": ["fake-target:/y"],
            "emotions": ["angry", "happy", "sad", "neutral"], "run_emotions": ["angry", "happy"],
            "methods": ["source-only", "pa-cfa"], "seeds": [0], "bootstrap": {"n_resamples": 0}}

GRID = """
import json, sys
sys.path.insert(0, sys.argv[1])
from grid_fakes import FakeLayers
from rich.console import Console
from fairser.errors import FairserError
from fairser.experiments import parse_config, run_experiment
layers = FakeLayers(sleep=float(sys.argv[4]), started=sys.argv[5])
try:
    run_experiment(parse_config(json.loads(sys.argv[2])), out_dir=sys.argv[3], progress=False,
                   console=Console(quiet=True), backend=layers.backend(),
                   executor="processes:2")
except FairserError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _start(tmp_path: Path, sleep: float) -> tuple[subprocess.Popen, Path, Path]:
    """The grid in a child process; its stderr goes to ``tmp_path/stderr`` (not a pipe: an
    orphaned worker would hold a pipe open)."""
    out, started = tmp_path / "run", tmp_path / "started"
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", GRID, str(HERE), json.dumps(SETTINGS),
                                 str(out), str(sleep), str(started)],
                                stdout=subprocess.DEVNULL, stderr=err)
    return proc, out, started


def _cleanup(proc: subprocess.Popen, started: Path) -> None:
    """End the grid's process and any of its workers still running (a failed test)."""
    proc.kill()
    proc.wait(30)
    for path in started.glob("*") if started.is_dir() else []:
        if _alive(int(path.name)):
            os.kill(int(path.name), signal.SIGKILL)


def _busy_workers(proc: subprocess.Popen, started: Path, n: int = 2,
                  timeout: float = 120.0) -> list[int]:
    """Pids of ``n`` worker processes inside a fit (each fit writes its pid to ``started``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (started.parent / "stderr").read_text()
        pids = [int(p.name) for p in started.glob("*")] if started.is_dir() else []
        live = [pid for pid in pids if _alive(pid)]
        if len(live) >= n:
            return live
        time.sleep(0.2)
    raise AssertionError(f"no {n} busy workers after {timeout} s")


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_workers_end_when_the_grid_process_is_killed(tmp_path):
    proc, _, started = _start(tmp_path, sleep=120.0)  # every fit far longer than the test
    try:
        workers = _busy_workers(proc, started)
        assert proc.pid not in workers and os.getpid() not in workers
        proc.kill()  # SIGKILL: no handler runs in the grid's process
        proc.wait(30)
        assert _gone_within(workers, 10.0) == []
    finally:
        _cleanup(proc, started)


def test_sigterm_stops_the_workers_and_a_rerun_resumes(tmp_path):
    proc, out, started = _start(tmp_path, sleep=3.0)
    try:
        deadline = time.monotonic() + 180
        records: list[Path] = []
        while not records:  # a first fit finished (the input probe's record does not count)
            assert time.monotonic() < deadline and proc.poll() is None, (
                tmp_path / "stderr").read_text()
            records = [p for p in (out / "records").glob("*.json")
                       if not p.name.startswith("reference__")] if out.is_dir() else []
            time.sleep(0.2)
        workers = _busy_workers(proc, started)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        gone = _gone_within(workers, 5.0)
    finally:
        _cleanup(proc, started)
    err = (tmp_path / "stderr").read_text()
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "terminated (SIGTERM)" in lines[0] and "rerun" in lines[0], err
    assert gone == []
    kept = [p for p in (out / "records").glob("*.json") if not p.name.startswith("reference__")]
    assert 1 <= len(kept) < 6
    for path in kept:
        assert json.loads(path.read_text())["status"] == "ok"
    result = run_experiment(parse_config(SETTINGS), out_dir=out, progress=False,
                            console=Console(quiet=True), backend=FakeLayers().backend())
    assert result.n_runs == 6 and result.n_skipped == len(kept) and not result.failed


def test_a_worker_whose_parent_is_gone_exits_at_once(tmp_path):
    # die_with_parent in a process whose parent is not the one named: it exits, code 1
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "from fairser.experiments.worker_lifetime import die_with_parent;"
            "die_with_parent(1 if __import__('os').getppid() != 1 else 2); print('survived')")
    done = subprocess.run([sys.executable, "-c", code, str(HERE)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "survived" not in done.stdout
    assert GridTerminated.exit_code == 143 and callable(die_with_parent)
