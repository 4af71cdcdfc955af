"""Run a real grid and a real ``fairser train`` on a GPU: the paths docs/scaling.md recommends
for one GPU server, on real audio (EmoDB -> CASIA, log-mel features).

1. ``grid``: :func:`fairser.experiments.run_experiment` of one grid (``--methods`` x the four
   emotions x ``--seeds``; default network, ``--epochs`` per stage) three times into separate
   run folders over one feature store: ``--executor local`` on ``--device``, ``processes:N``
   on ``--device`` (N workers sharing the one GPU, each seeing it through
   ``CUDA_VISIBLE_DEVICES``, with ``--loader-workers`` DataLoader processes per fit: worker
   processes inside pool workers) and ``local`` on the CPU (``--cpu-threads``). Reports the
   wall time of each, whether the device runs' results.csv agree apart from timings, the
   largest score difference between them, and how far the device's scores are from the
   CPU's (UAR per row, largest score difference).
2. ``torchrun``: ``fairser train RUN.yaml`` (pa-cfa, angry, ``features_device: auto``, device
   ``--device``) in one plain process and under ``torchrun --nproc_per_node 1`` (nccl on CUDA):
   the same scores are expected (one rank), ``world_size`` and the device in the output.

Writes ``gpu_grid.json`` into ``--out`` after every part. The audio comes from ``--data``, a
folder made on a machine with ../shared/data by ``--prepare`` (real files copied, since links
do not travel to a device machine)::

    python benchmarks/gpu_grid.py --prepare .gpucheck/data            # here (~25 MB)
    python benchmarks/gpu_grid.py --data .gpucheck/data --device cuda --out $OUT   # there
    python benchmarks/gpu_grid.py --data .gpucheck/data --device cpu --small --out /tmp/g
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: EmoDB letters of the four emotions (W anger, F happiness, T sadness, N neutral).
EMODB_LETTERS = ("W", "F", "T", "N")
CASIA_EMOTIONS = ("angry", "happy", "sad", "neutral")
RESULTS: dict = {}


def prepare(shared: Path, dest: Path, casia_texts: int) -> None:
    """Copy EmoDB's four emotions and ``casia_texts`` texts of CASIA's into ``dest``."""
    (dest / "emodb" / "wav").mkdir(parents=True, exist_ok=True)
    for path in sorted((shared / "emodb" / "wav").glob("*.flac")):
        if path.stem[5] in EMODB_LETTERS:
            shutil.copy2(path, dest / "emodb" / "wav" / path.name)
    for speaker in sorted(p.name for p in (shared / "casia").iterdir() if p.is_dir()):
        for emotion in CASIA_EMOTIONS:
            folder = dest / "casia" / speaker / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for text in range(201, 201 + casia_texts):
                shutil.copy2(shared / "casia" / speaker / emotion / f"{text}.flac", folder)
    n = sum(1 for _ in dest.rglob("*.flac"))
    size = sum(p.stat().st_size for p in dest.rglob("*.flac")) / 2**20
    print(f"{n} files, {size:.1f} MiB in {dest}")


def settings(args, device: str, cache: Path, workers: int, threads: int | None) -> dict:
    data = args.data.resolve()
    return {
        "name": "gpu-grid",
        "source": f"emodb:{data / 'emodb'}",
        "targets": [f"casia:{data / 'casia'}"],
        "emotions": ["angry", "happy", "sad", "neutral"],
        "methods": args.methods,
        "seeds": args.seeds,
        "linear_baseline": False,
        "features": {"frontend": "logmel", "cache_dir": str(cache)},
        "bootstrap": {"n_resamples": 0},
        "probe": {"enabled": False, "reference": False},
        "embeddings_per_corpus": 0,
        "report": False,
        "training": {
            "stage1_epochs": args.epochs,
            "stage2_epochs": args.epochs,
            "patience": args.epochs + 1,
            "device": device,
            "num_workers": workers,
            "num_threads": threads,
            "model": {"dropout": 0.0, "input_dropout": 0.0},
        },
    }


def _csv_without_timing(path: Path) -> str:
    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["fit_s"])
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def _scores(run: Path) -> pd.DataFrame:
    keys = ["method", "seed", "emotion", "corpus", "utt_id"]
    df = pd.read_parquet(run / "predictions.parquet")
    keys = [k for k in keys if k in df.columns]
    return df.set_index(keys)["score"].sort_index()


def part_grid(args) -> dict:
    from rich.console import Console

    from fairser.experiments import parse_config, run_experiment
    from fairser.experiments.executors import parse_executor

    root = args.out / "grid"
    cache = root / "cache"
    out: dict = {"runs": {}}
    runs = [
        ("local", args.device, 0, None),
        (f"processes:{args.processes}", args.device, args.loader_workers, None),
        *[(f"processes:{n}", args.device, 0, None) for n in args.more_processes],
        ("local", "cpu", 0, args.cpu_threads),
    ]
    # the feature store first (one source-only fit), so that no timed run pays extraction
    t0 = time.perf_counter()
    warm = {**settings(args, args.device, cache, 0, None), "methods": ["source-only"],
            "run_emotions": ["angry"]}  # fmt: skip
    run_experiment(parse_config(warm), out_dir=root / "warm", executor=parse_executor("local"),
                   progress=False, console=Console(quiet=True))  # fmt: skip
    out["extract_and_warm_s"] = round(time.perf_counter() - t0, 1)
    folders = {}
    for i, (executor, device, workers, threads) in enumerate(runs):
        name = f"{i}-{executor.replace(':', '-')}-{device.replace(':', '')}"
        cfg = parse_config(settings(args, device, cache, workers, threads))
        t0 = time.perf_counter()
        run_experiment(cfg, out_dir=root / name, executor=parse_executor(executor),
                       progress=False, console=Console(quiet=True))  # fmt: skip
        secs = time.perf_counter() - t0
        res = pd.read_csv(root / name / "results.csv")
        meta = json.loads((root / name / "meta.json").read_text())
        folders[name] = root / name
        out["runs"][name] = {
            "executor": executor,
            "device": device,
            "loader_workers": workers,
            "seconds": round(secs, 1),
            "fit_s_sum": round(float(res["fit_s"].sum()) / 2, 1),  # two rows per fit
            "fits": int(len(res) // 2),
            "ok": bool((res["status"] == "ok").all()),
            "target_uar_mean": round(float(res.loc[res["corpus"] == "casia", "uar"].mean()), 4),
            "meta_devices": meta.get("devices"),
        }
        print(json.dumps({name: out["runs"][name]}), flush=True)
        save(args)
    names = list(folders)
    dev_local, cpu = folders[names[0]], folders[names[-1]]
    ref_csv, a = _csv_without_timing(dev_local / "results.csv"), _scores(dev_local)
    others = [folders[n] for n in names[1:-1]]  # the other device runs, against local's
    out["device_executors_identical_csv"] = all(
        _csv_without_timing(f / "results.csv") == ref_csv for f in others
    )
    out["device_executors_max_score_diff"] = max(
        float((a - _scores(f).reindex(a.index)).abs().max()) for f in others
    )
    c = _scores(cpu).reindex(a.index)
    out["device_vs_cpu_max_score_diff"] = float((a - c).abs().max())
    out["device_vs_cpu_decisions_equal"] = float(((a >= 0.5) == (c >= 0.5)).mean())
    ra, rc = (pd.read_csv(f / "results.csv") for f in (dev_local, cpu))
    out["device_vs_cpu_max_uar_diff"] = float((ra["uar"] - rc["uar"]).abs().max())
    local_s = out["runs"][next(iter(out["runs"]))]["seconds"]
    for rec in out["runs"].values():
        rec["speedup_vs_device_local"] = round(local_s / rec["seconds"], 2)
    return out


def part_torchrun(args, fairser_cmd: list[str]) -> dict:
    import yaml

    root = args.out / "train"
    root.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve()
    cfg = {
        "source": f"emodb:{data / 'emodb'}",
        "target": f"casia:{data / 'casia'}",
        "frontend": "logmel",
        "method": "pa-cfa",
        "emotion": "angry",
        "features_device": "auto",
        "training": {
            "stage1_epochs": args.epochs,
            "stage2_epochs": args.epochs,
            "patience": args.epochs + 1,
            "device": args.device,
            "model": {"dropout": 0.0, "input_dropout": 0.0},
        },
    }
    out: dict = {}
    for name, launcher in (
        ("plain", []),
        ("torchrun", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                      "--nproc_per_node", "1", "--no-python"]),
    ):  # fmt: skip
        (root / f"{name}.yaml").write_text(
            yaml.safe_dump({**cfg, "cache_dir": f"cache-{name}"}), encoding="utf-8"
        )
        t0 = time.perf_counter()
        r = subprocess.run(
            [*launcher, *fairser_cmd, "train", f"{name}.yaml", "--no-progress", "--json"],
            cwd=root, capture_output=True, text=True, timeout=args.timeout,
        )  # fmt: skip
        rec: dict = {"rc": r.returncode, "seconds": round(time.perf_counter() - t0, 1)}
        try:
            res = json.loads(r.stdout)
            rec.update(
                world_size=res.get("world_size"),
                device=res.get("device"),
                target_uar=res.get("target", {}).get("uar"),
                source_uar=res.get("source_test", {}).get("uar"),
            )
            model_json = root / f"{name}.run" / "model" / "model.json"
            if model_json.exists():
                meta = json.loads(model_json.read_text())
                keys = ("device", "device_name", "precision", "world_size")
                rec["model_json"] = {k: meta.get(k) for k in keys}
        except json.JSONDecodeError:
            rec["stdout_tail"] = r.stdout[-2000:]
            rec["stderr_tail"] = r.stderr[-3000:]
        out[name] = rec
        print(json.dumps({name: rec}), flush=True)
    p, t = out["plain"], out["torchrun"]
    out["same_scores"] = p.get("target_uar") is not None and p.get("target_uar") == t.get(
        "target_uar"
    )
    return out


def save(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_grid.json").write_text(json.dumps(RESULTS, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepare", type=Path, help="copy the audio subset into this folder, exit")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--casia-texts", type=int, default=25)
    ap.add_argument("--data", type=Path, default=Path(".gpucheck/data"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("gpu-grid"))
    ap.add_argument("--methods", nargs="+", default=["source-only", "pa", "pa-adv", "pa-cfa"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=10, help="epochs per stage")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--loader-workers", type=int, default=2)
    ap.add_argument(
        "--more-processes",
        type=int,
        nargs="*",
        default=[],
        help="also processes:N for each N, no DataLoader workers",
    )
    ap.add_argument("--cpu-threads", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--parts", nargs="+", default=["grid", "torchrun"])
    ap.add_argument("--fairser", nargs="+", default=None, help="command that runs fairser's CLI")
    ap.add_argument("--small", action="store_true", help="a CPU rehearsal: fewer fits, epochs")
    args = ap.parse_args()
    if args.prepare:
        prepare(args.shared, args.prepare, args.casia_texts)
        return
    if args.small:
        args.methods, args.epochs, args.processes = ["source-only", "pa-cfa"], 2, 2
        args.loader_workers, args.more_processes = 1, [2]
    import torch

    fairser_cmd = args.fairser or [sys.executable, "-c", "from fairser.cli import main; main()"]
    RESULTS["env"] = {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps(RESULTS["env"]), flush=True)
    for part in args.parts:
        t0 = time.perf_counter()
        try:
            if part == "grid":
                RESULTS["grid"] = part_grid(args)
            elif part == "torchrun":
                RESULTS["torchrun"] = part_torchrun(args, fairser_cmd)
        except Exception as exc:  # noqa: BLE001 - record and go on to the next part
            import traceback

            traceback.print_exc()
            RESULTS[part] = {"error": f"{type(exc).__name__}: {exc}"}
        RESULTS.setdefault("seconds", {})[part] = round(time.perf_counter() - t0, 1)
        print(f"== {part}: {RESULTS['seconds'][part]} s", flush=True)
        save(args)
    print(json.dumps({k: v for k, v in RESULTS.items() if k != "env"}, default=str, indent=1))


if __name__ == "__main__":
    main()
