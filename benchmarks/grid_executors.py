"""Grid executors: ``local`` vs ``processes:N`` (and optionally ``ray:N``) on one grid.

Protocol: the reduced RAVDESS -> CASIA grid of ``benchmarks/grid_executors.yaml`` (whisper-base
layer 2, one seed, angry and happy, the six methods and the linear baseline: 14 fits, one torch
thread per fit as in configs/shared/grid.yaml). Features are extracted (or found in the store)
once before any timing. Then the same grid runs into a fresh folder per executor, in this
process, one after the other; the script prints for each the wall time of the whole
``run_experiment`` call and of the fit phase alone (the executor's ``run``; loading, the
input probes, the paired tests and the report are serial and identical for every executor), the
ratio against ``local`` measured in the same process, and whether results.csv is byte-identical
to local's apart from the timing column ``fit_s``. The load average before and after is printed:
on a shared machine the ratio says little; rerun it on a quiet one.

Usage: ``python benchmarks/grid_executors.py [--config benchmarks/grid_executors.yaml]
[--executors local processes:2] [--out /tmp/grid-executors] [--json OUT.json]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console

from fairser.experiments import default_backend, load_config, run_experiment
from fairser.experiments.executors import available_cores, parse_executor
from fairser.experiments.inputs import load_grid_data

HERE = Path(__file__).resolve().parent


class Timed:
    """Wraps an executor and records how long its ``run`` (the fit phase) took."""

    def __init__(self, inner) -> None:
        self.inner, self.label, self.seconds = inner, inner.label, 0.0

    def warm(self, n_tasks: int) -> None:
        self.inner.warm(n_tasks)

    def close(self) -> None:
        self.inner.close()

    def run(self, fn, ctx, tasks, on_done) -> None:
        start = time.perf_counter()
        try:
            self.inner.run(fn, ctx, tasks, on_done)
        finally:
            self.seconds = time.perf_counter() - start


def csv_without_timing(path: Path) -> str:
    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["fit_s"])
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "grid_executors.yaml")
    ap.add_argument("--executors", nargs="+", default=["local", "processes:2"])
    ap.add_argument("--out", type=Path, default=None, help="Folder for the run folders.")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.executors[0] != "local":
        args.executors.insert(0, "local")
    cfg = load_config(args.config)
    console = Console(stderr=True)
    backend = default_backend()
    root = args.out or Path(tempfile.mkdtemp(prefix="grid-executors-"))
    load = os.getloadavg()
    print(f"cores {available_cores()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    start = time.perf_counter()
    load_grid_data(cfg, backend, progress=True, console=console)  # warm the feature store
    print(f"features ready in {time.perf_counter() - start:.0f} s (not timed below)")
    rows, reference = [], None
    for text in args.executors:
        out = root / text.replace(":", "-")
        shutil.rmtree(out, ignore_errors=True)
        timed = Timed(parse_executor(text))
        start = time.perf_counter()
        result = run_experiment(cfg, out_dir=out, progress=False, console=Console(quiet=True),
                                backend=backend, executor=timed,
                                command=f"benchmarks/grid_executors.py {text}")
        wall = time.perf_counter() - start
        text_csv = csv_without_timing(out / "results.csv")
        reference = reference or {"wall": wall, "fits": timed.seconds, "csv": text_csv}
        rows.append({"executor": text, "fits": result.n_runs, "wall_s": round(wall, 1),
                     "fit_phase_s": round(timed.seconds, 1),
                     "speedup_wall": round(reference["wall"] / wall, 2),
                     "speedup_fit_phase": round(reference["fits"] / timed.seconds, 2),
                     "identical_results": text_csv == reference["csv"]})
        print(json.dumps(rows[-1]))
    load = os.getloadavg()
    print(f"load average after {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; run folders in {root}")
    print(pd.DataFrame(rows).to_string(index=False))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cores": available_cores()}, indent=1))


if __name__ == "__main__":
    main()
