"""The same grid with ``--executor local`` at two commits: is the current code any slower?

Protocol: the reduced RAVDESS -> CASIA grid of ``benchmarks/grid_executors.yaml`` (14 fits, one
torch thread per fit). ``--before COMMIT`` is checked out into a temporary git worktree; the
current source tree is the other side. Each side runs in its own subprocess (the same Python,
with ``PYTHONPATH`` pointing at that side's ``src``) that first loads the grid's features
(extracting them if that commit's store key differs; not timed), then times one whole
``run_experiment`` call into a fresh folder. Sides alternate for ``--repeats`` rounds
(before, current, before, current, ...) so that a drift in the machine's load hits both;
the script prints each time, the median per side, the ratio current / before and the load
average before and after.

Usage: ``python benchmarks/grid_versions.py --before b3ec7a2 [--repeats 2]
[--config benchmarks/grid_executors.yaml] [--json OUT.json]``
(``b3ec7a2`` is the last commit before the streaming/executor work of issue 9.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import json, sys, time
from pathlib import Path
from rich.console import Console
from fairser.experiments import load_config, run_experiment
cfg = load_config(sys.argv[1])
quiet = Console(quiet=True)
try:
    from fairser.experiments.inputs import load_grid_data
    from fairser.experiments import default_backend
    load_grid_data(cfg, default_backend(), progress=False, console=quiet)
except ImportError:  # older layouts: a first untimed run warms the store instead
    if sys.argv[3] == "warm":
        run_experiment(cfg, out_dir=Path(sys.argv[2]) / "warm", progress=False,
                       console=quiet)
start = time.perf_counter()
run_experiment(cfg, out_dir=Path(sys.argv[2]) / "timed", progress=False, console=quiet)
print(json.dumps({"wall_s": time.perf_counter() - start}))
"""


def run_side(src: Path, config: Path, out: Path, *, warm: bool) -> float:
    env = dict(os.environ, PYTHONPATH=str(src))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(config), str(out),
                           "warm" if warm else "timed"], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{src}: the grid failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["wall_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="The commit to compare with.")
    ap.add_argument("--config", type=Path, default=HERE / "grid_executors.yaml")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="grid-versions-"))
    old = tmp / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before],
                   check=True, capture_output=True)
    sides = {"before": old / "src", "current": ROOT / "src"}
    times: dict[str, list[float]] = {k: [] for k in sides}
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; before = {args.before}")
    try:
        for i in range(args.repeats):
            for name, src in sides.items():
                wall = run_side(src, args.config.resolve(), tmp / f"{name}-{i}", warm=i == 0)
                times[name].append(wall)
                print(json.dumps({"side": name, "round": i, "wall_s": round(wall, 1)}), flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                       check=False, capture_output=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    load = os.getloadavg()
    summary = {"before": args.before, "median_s": {k: round(v, 1) for k, v in med.items()},
               "ratio_current_over_before": round(med["current"] / med["before"], 3),
               "load_after": [round(x, 1) for x in load]}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"times": times, **summary}, indent=1))


if __name__ == "__main__":
    main()
