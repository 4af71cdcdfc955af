"""Check fairser's device code path on a GPU (or any device): train, extract, predict, DDP.

1. ``train``: :func:`fairser.training.fit` of each method in ``--methods`` on synthetic
   features of a realistic shape (``--dim``-d, one layer, ``--frames`` frames per utterance at
   50 frames/s, ``--rows`` source + ``--rows / 2`` target utterances) in every precision of
   ``--precisions`` on ``--device``, then fp32 on the CPU of the same machine (``--cpu-methods``)
   for the ratio. Reports seconds per source training row per epoch (training steps only) and
   per fit, and the peak GPU memory; checks that every loss, dev score and prediction is
   finite, and that the fp32 fits on the device and on the CPU agree (dropout is 0 in every
   fit, so the two differ only by float rounding: same batch plan, same initial weights).
2. ``predict``: the CPU-trained model saved, loaded with ``device=--device`` and asked for
   ``predict_proba``: the same weights must give the same probabilities (fp32) within 1e-4.
3. ``extract``: :func:`fairser.features.extract` with the ``hf:`` frontend on a randomly
   initialised whisper-base-sized encoder (d_model 512, 6 blocks, saved to a temp folder) over
   ``--clips`` synthetic clips of 2.75-11 s, on ``--device`` (fp32, bf16) and on the CPU:
   audio seconds per wall second, and the fp32 features' largest difference device vs CPU.
4. ``ddp``: a ``torchrun`` launch with one process (nccl on CUDA, gloo on CPU): the process
   group, then one stage-2 epoch through the DistributedDataParallel wrapper of a DDP fit
   (:func:`fairser.training.distributed.ddp_wrap`), whose mean losses must equal those of the same
   epoch without the wrapper.

Writes ``gpu.json`` (versions, device name, every figure) into ``--out`` after every part.

Usage (device run, ~3 min on an H200 machine)::

    python benchmarks/gpu.py --device cuda --out $OUT
    python benchmarks/gpu.py --device cpu --out /tmp/g --small     # a quick CPU rehearsal
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

EMOTIONS = ("angry", "happy", "sad", "neutral")
RESULTS: dict = {}


class DictFeatures:
    """In-memory stand-in for a FeatureSet: key -> (L, T, D) float16 array."""

    def __init__(self, arrays: dict[str, np.ndarray], dim: int) -> None:
        self.arrays, self.n_layers, self.dim = arrays, 1, dim
        self.frontend, self.layers, self.frame_rate = "synthetic", (0,), 50.0
        self.bad = pd.DataFrame(columns=["corpus", "utt_id", "path", "reason"])

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: object) -> bool:
        return key in self.arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def keys(self):
        return self.arrays.keys()


def make_pair(n_source: int, dim: int, frames: tuple[int, int], seed: int = 0):
    """(source, target, features): 4 emotions and 2 genders planted in random directions."""
    rng = np.random.default_rng(seed)
    bank = rng.standard_normal((max(200_000, 4 * frames[1]), dim), dtype=np.float32)
    dirs = {k: rng.normal(size=dim).astype(np.float32) for k in (*EMOTIONS, "gender")}
    arrays: dict[str, np.ndarray] = {}
    frames_all: list[int] = []
    dfs = []
    for corpus, n, shift in (("src", n_source, 0.0), ("tgt", n_source // 2, 0.5)):
        rows = []
        for i in range(n):
            emo, gender = EMOTIONS[i % 4], "M" if rng.random() < 0.5 else "F"
            t = int(rng.integers(frames[0], frames[1] + 1))
            start = int(rng.integers(0, len(bank) - t))
            # a per-utterance offset (speaker, channel) keeps the task from being trivial
            offset = rng.standard_normal(dim, dtype=np.float32)
            x = bank[start : start + t] + offset + 0.05 * dirs[emo] + shift
            x += (0.5 if gender == "M" else -0.5) * dirs["gender"]
            arrays[f"{corpus}/u{i:05d}"] = x[None].astype(np.float16)
            r = rng.random()
            rows.append(
                {
                    "corpus": corpus,
                    "utt_id": f"u{i:05d}",
                    "path": f"/nonexistent/{corpus}/u{i:05d}.wav",
                    "speaker": f"{gender}{i % 20}",
                    "gender": gender,
                    "emotion": emo,
                    "split": "train" if r < 0.7 else ("dev" if r < 0.85 else "test"),
                    "language": "xx",
                    "duration_s": t / 50.0,
                }
            )
            frames_all.append(t)
        df = pd.DataFrame(rows)
        for c in df.columns[:-1]:
            df[c] = df[c].astype("string")
        dfs.append(df)
    return dfs[0], dfs[1], DictFeatures(arrays, dim), float(np.mean(frames_all))


def config(args: argparse.Namespace) -> dict:
    e = args.epochs
    return {
        "stage1_epochs": e,
        "stage2_epochs": e,
        "patience": e + 1,
        "model": {"dropout": 0.0, "input_dropout": 0.0},
        "num_threads": None,
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def one_fit(src, tgt, feats, *, method, device, precision, args, workers=0):
    """(fitted model, figures) of one fit."""
    from fairser.training import fit

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    m = fit(
        source=src,
        target=tgt,
        features=feats,
        method=method,
        emotion="angry",
        config=config(args),
        seed=0,
        progress=False,
        device=device,
        precision=precision,
        num_workers=workers,
    )
    _sync(device)
    secs = time.perf_counter() - t0
    epochs = m.history["epochs"]
    n_tr = m.history["n_rows"]["source_train"]
    train_s = sum(h["seconds"] for h in epochs)
    losses = [v for h in epochs for k, v in h.items() if isinstance(v, float)]
    t1 = time.perf_counter()
    proba = m.predict_proba(tgt, feats)
    rec = {
        "method": method,
        "device": device,
        "precision": precision,
        "workers": workers,
        "meta_device": m.meta.get("device"),
        "meta_precision": m.meta.get("precision"),
        "fit_s": round(secs, 2),
        "epochs": len(epochs),
        "train_s": round(train_s, 2),
        "ms_per_row_epoch": round(1e3 * train_s / (n_tr * len(epochs)), 4),
        "predict_s": round(time.perf_counter() - t1, 2),
        "dev_uar": [round(h["dev_uar"], 4) for h in epochs],
        "finite": bool(np.isfinite(losses).all() and np.isfinite(proba).all()),
    }
    if device.startswith("cuda"):
        rec["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(rec), flush=True)
    return m, proba, rec


def part_train(args, data) -> dict:
    src, tgt, feats, _ = data
    out: dict = {"runs": []}
    probas = {}
    small = make_pair(120, args.dim, (20, 80), seed=1)[:3]  # warm-up: CUDA context, kernels
    for precision in args.precisions:
        one_fit(*small, method=args.methods[-1], device=args.device, precision=precision, args=args)
    for method in args.methods:
        for precision in args.precisions:
            m, p, rec = one_fit(
                src, tgt, feats, method=method, device=args.device, precision=precision, args=args
            )
            out["runs"].append(rec)
            probas[(method, args.device, precision)] = p
    if args.workers:  # the same fit with rows read by DataLoader worker processes
        method = args.methods[0]
        rec = one_fit(
            src, tgt, feats, method=method, device=args.device, precision="fp32", args=args,
            workers=args.workers,
        )[2]  # fmt: skip
        out["runs"].append(rec)
    cpu_models = {}
    torch.set_num_threads(args.cpu_threads)
    for method in args.cpu_methods:
        m, p, rec = one_fit(
            src, tgt, feats, method=method, device="cpu", precision="fp32", args=args
        )
        out["runs"].append(rec)
        cpu_models[method] = m
        ref = probas.get((method, args.device, "fp32"))
        if ref is not None:
            dev_rec = next(
                r
                for r in out["runs"]
                if (r["method"], r["device"], r["precision"]) == (method, args.device, "fp32")
            )
            out.setdefault("agreement", {})[method] = {
                "max_abs_proba_diff": float(np.abs(ref - p).max()),
                "label_agreement": float(((ref >= 0.5) == (p >= 0.5)).mean()),
                "dev_uar_device": dev_rec["dev_uar"],
                "dev_uar_cpu": rec["dev_uar"],
                "speedup_ms_per_row_epoch": round(
                    rec["ms_per_row_epoch"] / dev_rec["ms_per_row_epoch"], 2
                ),
                "speedup_fit": round(rec["fit_s"] / dev_rec["fit_s"], 2),
            }
    out["ok_finite"] = all(r["finite"] for r in out["runs"])
    out["ok_agreement"] = all(
        a["max_abs_proba_diff"] <= args.tolerance and a["label_agreement"] >= 0.97
        for a in out.get("agreement", {}).values()
    )
    out["tolerance"] = f"max |p_device - p_cpu| <= {args.tolerance}, labels agree >= 97%"
    out["_models"] = cpu_models
    return out


def part_predict(args, data, cpu_models) -> dict:
    """The CPU-trained model loaded on the device: same weights, same probabilities."""
    from fairser.training import FittedModel

    src, tgt, feats, _ = data
    out = {}
    for method, m in cpu_models.items():
        with tempfile.TemporaryDirectory() as tmp:
            m.save(tmp)
            ref = m.predict_proba(tgt, feats)
            rec = {}
            for precision in ("fp32", "bf16"):
                loaded = FittedModel.load(tmp, device=args.device, precision=precision)
                loaded.predict_proba(tgt.iloc[:64], feats)  # warm-up
                _sync(args.device)
                t0 = time.perf_counter()
                p = loaded.predict_proba(tgt, feats)
                _sync(args.device)
                rec[precision] = {
                    "rows": len(tgt),
                    "seconds": round(time.perf_counter() - t0, 3),
                    "max_abs_diff_vs_cpu": float(np.abs(p - ref).max()),
                    "finite": bool(np.isfinite(p).all()),
                }
            t0 = time.perf_counter()
            m.predict_proba(tgt, feats)
            rec["cpu_seconds"] = round(time.perf_counter() - t0, 3)
            rec["ok"] = rec["fp32"]["max_abs_diff_vs_cpu"] <= 1e-4 and rec["bf16"]["finite"]
        out[method] = rec
        print(json.dumps({method: rec}), flush=True)
    return out


def synthetic_clips(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` 16 kHz WAV clips of 2.75-11 s (tones and noise) and their manifest."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sec = float(rng.uniform(2.75, 11.0))
        t = np.arange(int(sec * 16000)) / 16000
        f0 = rng.uniform(90, 250)
        y = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.1 * np.sin(3 * t)))
        y = (y + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
        path = folder / f"c{i:04d}.wav"
        sf.write(path, y, 16000)
        rows.append(
            {"corpus": "clips", "utt_id": f"c{i:04d}", "path": str(path), "duration_s": sec}
        )
    return pd.DataFrame(rows)


def part_extract(args) -> dict:
    from random_whisper import save_random_whisper  # benchmarks/, beside this script

    from fairser.features import extract

    tmp = Path(tempfile.mkdtemp(prefix="fairser-gpu-"))
    size = save_random_whisper(tmp / "enc", small=args.small)
    df = synthetic_clips(tmp / "wav", args.clips)
    audio = float(df["duration_s"].sum())
    name = f"hf:{tmp / 'enc'}"
    out: dict = {"clips": len(df), "audio_s": round(audio, 1), "encoder": size, "runs": {}}
    feats = {}
    extract(df.iloc[:4], name, layers=[2], cache_dir=tmp / "warm", device=args.device,
            progress=False)  # fmt: skip
    runs = [(args.device, "fp32"), (args.device, "bf16"), ("cpu", "fp32")]
    for device, precision in runs:
        threads = args.cpu_threads if device == "cpu" else None
        _sync(args.device)
        t0 = time.perf_counter()
        fs = extract(
            df,
            name,
            layers=[2],
            cache_dir=tmp / f"{device}-{precision}",
            device=device,
            precision=precision,
            progress=False,
            threads=threads,
            dtype="float32",
        )
        _sync(args.device)
        secs = time.perf_counter() - t0
        feats[(device, precision)] = fs
        out["runs"][f"{device}-{precision}"] = {
            "seconds": round(secs, 2),
            "audio_s_per_s": round(audio / secs, 1),
            "n_computed": int(fs.stats.n_computed),
        }
        print(json.dumps({f"extract {device} {precision}": out["runs"][f"{device}-{precision}"]}))
    a, b = feats[(args.device, "fp32")], feats[("cpu", "fp32")]
    diffs = [float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in list(a.keys())]
    scale = max(float(np.abs(np.asarray(b[k])).max()) for k in list(b.keys()))
    out["max_abs_diff_fp32_vs_cpu"] = max(diffs)
    out["max_abs_value"] = scale
    out["ok"] = max(diffs) <= 1e-3 * max(scale, 1.0)
    out["speedup_fp32"] = round(
        out["runs"]["cpu-fp32"]["seconds"] / out["runs"][f"{args.device}-fp32"]["seconds"], 1
    )
    return out


def ddp_child(args) -> None:
    """Inside torchrun: one stage-2 epoch with and without the DDP wrapper."""
    from fairser.device import resolve_precision
    from fairser.training.distributed import ddp_wrap
    from fairser.training.prepare import prepare_fit
    from fairser.training.samplers import epoch_rng
    from fairser.training.steps import Runtime, run_epoch

    dev = torch.device(args.device)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend)
    src, tgt, feats, _ = make_pair(max(200, args.rows // 4), args.dim, tuple(args.frames))
    cfg = config(args)
    prep = prepare_fit(
        source=src, target=tgt, features=feats, method="pa-cfa", emotion="angry", config=cfg,
        seed=0,
    )  # fmt: skip
    rt = Runtime(device=dev, precision=resolve_precision("fp32", dev))
    recs = {}
    for wrapped in (False, True):
        torch.manual_seed(0)
        net = prep.build_net().to(dev)
        model = ddp_wrap(net, dev) if wrapped else net  # the wrapper a DDP fit trains through
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        d = prep.data
        table = prep.method.initial_table(d.train.y, d.train.g, max(d.n_groups, 1), d.n_classes)
        rec, _ = run_epoch(
            model, net, opt, method=prep.method, cfg=prep.config, data=d,
            feeds=d.feeds(rt), seed_torch=1, stage=2, epoch=0, rng=epoch_rng(0, 2, 0),
            table=table, scaler=None,
        )  # fmt: skip
        recs["ddp" if wrapped else "plain"] = {k: v for k, v in rec.items() if k != "seconds"}
    t = torch.ones(4, device=dev)
    torch.distributed.all_reduce(t)
    diff = max(abs(recs["ddp"][k] - recs["plain"][k]) for k in recs["plain"])
    res = {
        "backend": backend,
        "world_size": torch.distributed.get_world_size(),
        "all_reduce_ok": bool((t == 1).all()),
        "losses": recs,
        "max_loss_diff": diff,
        "ok": diff <= 1e-5 and bool((t == 1).all()),
    }
    torch.distributed.destroy_process_group()
    Path(args.out, "ddp.json").write_text(json.dumps(res, indent=1))


def part_ddp(args) -> dict:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
        __file__, "--ddp-child", "--device", args.device, "--out", str(args.out),
        "--rows", str(args.rows), "--dim", str(args.dim), "--epochs", str(args.epochs),
        "--frames", *map(str, args.frames),
    ]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ddp_timeout)
    out = {"rc": r.returncode, "seconds": round(time.perf_counter() - t0, 1)}
    path = Path(args.out, "ddp.json")
    if path.exists():
        out.update(json.loads(path.read_text()))
    else:
        out["stderr_tail"] = r.stderr[-3000:]
    return out


def env_info(device: str) -> dict:
    import transformers

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "device": device,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(device))
        info.update(device_name=p.name, capability=f"{p.major}.{p.minor}",
                    memory_gib=round(p.total_memory / 2**30, 1))  # fmt: skip
    return info


def save(args) -> None:
    Path(args.out).mkdir(parents=True, exist_ok=True)
    clean = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} if isinstance(v, dict)
             else v for k, v in RESULTS.items()}  # fmt: skip
    Path(args.out, "gpu.json").write_text(json.dumps(clean, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("gpu-check"))
    ap.add_argument("--small", action="store_true", help="tiny sizes (a CPU rehearsal)")
    ap.add_argument("--rows", type=int, default=4000, help="source utterances (target: half)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--frames", type=int, nargs=2, default=[137, 550])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per stage")
    ap.add_argument("--methods", nargs="+", default=["pa", "pa-cfa"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    ap.add_argument("--cpu-methods", nargs="*", default=["pa"])
    ap.add_argument("--cpu-threads", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4, help="one more fit with these workers")
    ap.add_argument("--parts", nargs="+", default=["train", "predict", "extract", "ddp"])
    ap.add_argument("--ddp-timeout", type=int, default=180)
    ap.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.small:
        args.rows, args.dim, args.frames, args.epochs, args.clips = 240, 32, [20, 80], 1, 6
        args.workers = min(args.workers, 1)
    if args.ddp_child:
        ddp_child(args)
        return
    if args.device == "cpu":
        torch.set_num_threads(args.cpu_threads)
    t_all = time.perf_counter()
    RESULTS["env"] = env_info(args.device)
    RESULTS["sizes"] = {
        "rows_source": args.rows,
        "rows_target": args.rows // 2,
        "dim": args.dim,
        "frames": args.frames,
        "epochs_per_stage": args.epochs,
    }
    print(json.dumps(RESULTS["env"]), flush=True)
    t0 = time.perf_counter()
    data = make_pair(args.rows, args.dim, tuple(args.frames))
    RESULTS["sizes"].update(
        mean_frames=round(data[3], 1), data_s=round(time.perf_counter() - t0, 1)
    )
    save(args)
    cpu_models = {}
    for part in args.parts:
        t0 = time.perf_counter()
        try:
            if part == "train":
                RESULTS["train"] = part_train(args, data)
                cpu_models = RESULTS["train"]["_models"]
            elif part == "predict":
                RESULTS["predict"] = part_predict(args, data, cpu_models)
            elif part == "extract":
                RESULTS["extract"] = part_extract(args)
            elif part == "ddp":
                RESULTS["ddp"] = part_ddp(args)
        except Exception as exc:  # noqa: BLE001 - record and go on to the next part
            import traceback

            traceback.print_exc()
            RESULTS[part] = {"error": f"{type(exc).__name__}: {exc}"}
        RESULTS.setdefault("seconds", {})[part] = round(time.perf_counter() - t0, 1)
        print(f"== {part}: {RESULTS['seconds'][part]} s", flush=True)
        save(args)
    RESULTS["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    save(args)
    print(json.dumps({k: v for k, v in RESULTS.items() if k != "train"}, default=str, indent=1))


if __name__ == "__main__":
    main()
