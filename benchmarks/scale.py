"""Scale benchmark: peak memory and seconds per utterance of a PA fit against corpus size.

Manifests of N utterances (default 2k, 8k, 32k, 128k; half source, half target) replicate the
real RAVDESS audio (../shared/data/ravdess) under distinct utterance ids and speakers; the
feature store keys entries by audio content, so the 1440 files are extracted once (Whisper-base
layer 2 by default) and every replica is a cache hit. Each size runs in a fresh subprocess
(its peak RSS is its own) that loads the manifests, opens the features, and fits PA with one
epoch per stage. Printed per size: peak RSS of the whole process (``ru_maxrss``), the RSS
growth during the fit (sampled every 50 ms), the peak and growth of the anonymous memory
(``RssAnon``: RSS without the file-backed pages of the memory-mapped store, which the kernel
may drop), the fit's seconds per utterance, and each figure as a ratio to the smallest size
(goals: peak RSS at the largest size <= 1.5x the smallest; seconds per utterance flat within
20%). ``norm`` divides seconds per utterance by a bare training loop timed in the same child
(before and after the fit), which takes out most of the machine's load.

Usage::

    python benchmarks/scale.py [--sizes 2000 8000 32000 128000] [--threads 1] [--workers 0]
        [--cache-mb 0] [--bucketing on] [--legacy --pythonpath OLD/src]

``--legacy`` passes only the options the pre-streaming implementation knew, so that
``--pythonpath`` can point the children at an older checkout for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _rss_mb(field: str = "VmRSS") -> float:
    """``field`` of /proc/self/status in MB (VmRSS: all resident pages; RssAnon: anonymous
    memory only, i.e. without the file-backed pages of the memory-mapped feature store)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Sampler(threading.Thread):
    """Largest VmRSS and RssAnon seen while running."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self.peak_anon = _rss_mb("RssAnon")
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, _rss_mb())
            self.peak_anon = max(self.peak_anon, _rss_mb("RssAnon"))


def bare_reference(steps: int = 20) -> float:
    """Seconds of ``steps`` training steps of the default network on a fixed random batch."""
    import torch

    from fairser.models import FairSERNet, NetSpec

    torch.manual_seed(0)
    net = FairSERNet(
        NetSpec(n_layers_in=1, in_dim=512, n_outputs=1, d_model=64, ff_dim=128, embed_dim=64)
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(64, 1, 44, 512).half()
    mask = torch.ones(64, 44, dtype=torch.bool)
    y = (torch.rand(64) > 0.5).float()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            out = net(x, mask, gender=False)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def manifests(n: int, corpus: str | None = None):
    """(source, target): n // 2 rows each, real audio (RAVDESS unless ``corpus``, a KIND:ROOT)
    replicated with new ids/speakers."""
    import numpy as np
    import pandas as pd

    from fairser.corpora import load_corpus

    base = load_corpus(corpus or f"ravdess:{SHARED / 'ravdess'}")

    def side(corpus: str, rows: int, offset: int) -> pd.DataFrame:
        idx = (np.arange(rows) + offset) % len(base)
        rep = (np.arange(rows) + offset) // len(base)
        df = base.iloc[idx].reset_index(drop=True).copy()
        df["corpus"] = corpus
        df["utt_id"] = [f"{u}-r{r}" for u, r in zip(df["utt_id"], rep, strict=True)]
        df["speaker"] = [f"{s}-r{r}" for s, r in zip(df["speaker"], rep, strict=True)]
        actor = df["speaker"].str.extract(r"(\d+)")[0].astype(int).to_numpy()
        df["split"] = np.where((actor + rep) % 6 == 0, "dev", "train")
        for c in ("corpus", "utt_id", "speaker", "split"):
            df[c] = df[c].astype("string")
        return df

    return side("ravdess", n // 2, 0), side("ravdess-t", n - n // 2, 7)


def child(args: argparse.Namespace) -> None:
    """One size: build, extract (cached), fit; print one JSON line."""
    import pandas as pd
    import torch

    from fairser.features import extract
    from fairser.training import fit

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    src, tgt = manifests(args.child, args.corpus)
    feats = extract(
        pd.concat([src, tgt], ignore_index=True),
        args.frontend,
        layers=args.layers,
        progress=False,
    )
    prep_s = time.perf_counter() - t0
    cfg = {"stage1_epochs": 1, "stage2_epochs": 1, "patience": 2, "num_threads": args.threads}
    if not args.legacy:
        cfg.update(
            device=args.device,
            num_workers=args.workers,
            cache_mb=args.cache_mb,
            bucketing=args.bucketing == "on",
        )
    ref_before = bare_reference()
    rss_before = _rss_mb()
    anon_before = _rss_mb("RssAnon")
    sampler = _Sampler()
    sampler.start()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t1 = time.perf_counter()
    model = fit(
        source=src,
        target=tgt,
        features=feats,
        method="pa",
        emotion="angry",
        config=cfg,
        seed=0,
        progress=False,
    )
    fit_s = time.perf_counter() - t1
    sampler.stop.set()
    sampler.join()
    ref = (ref_before + bare_reference()) / 2
    epochs = model.history["epochs"]
    rows = model.history["n_rows"]
    print(
        json.dumps(
            {
                "n": args.child,
                "rows": rows,
                "prep_s": prep_s,
                "fit_s": fit_s,
                "s_per_utt": fit_s / args.child,
                "ref_s": ref,
                "norm_per_utt": fit_s / args.child / ref,
                "epoch_s": [e["seconds"] for e in epochs],
                "train_s_per_row": sum(e["seconds"] for e in epochs) / (2 * rows["source_train"]),
                "rss_before_fit_mb": rss_before,
                "fit_peak_mb": sampler.peak,
                "anon_before_fit_mb": anon_before,
                "fit_peak_anon_mb": sampler.peak_anon,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "device": str(model.meta.get("device")),
                "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20
                if args.device.startswith("cuda")
                else None,
            }
        ),
        flush=True,
    )


def main() -> None:
    """Run every size in a fresh subprocess and print the figures and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000, 128000])
    ap.add_argument("--frontend", default="whisper-base")
    ap.add_argument("--layers", type=int, nargs="+", default=[2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--cache-mb", type=float, default=0.0, help="0: pure streaming")
    ap.add_argument("--bucketing", choices=["on", "off"], default="on")
    ap.add_argument("--legacy", action="store_true", help="only options older code knows")
    ap.add_argument("--pythonpath", default=None, help="PYTHONPATH of the children")
    ap.add_argument("--corpus", default=None, help="KIND:ROOT to replicate (default RAVDESS)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps (training)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args)
        return
    if args.corpus is None and not (SHARED / "ravdess").is_dir():
        sys.exit(f"needs the real RAVDESS audio at {SHARED / 'ravdess'} (or --corpus)")
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    flags = ["--frontend", args.frontend, "--layers", *map(str, args.layers)]
    flags += ["--threads", str(args.threads), "--workers", str(args.workers)]
    flags += ["--cache-mb", str(args.cache_mb), "--bucketing", args.bucketing]
    flags += ["--legacy"] if args.legacy else []
    flags += ["--device", args.device] + (["--corpus", args.corpus] if args.corpus else [])
    load = os.getloadavg()
    print(
        f"PA fit, 1 epoch per stage, {args.frontend} layers {args.layers}, torch threads "
        f"{args.threads}, workers {args.workers}, cache_mb {args.cache_mb}, bucketing "
        f"{args.bucketing}; {os.cpu_count()} CPUs, load average {load[0]:.1f} at start"
    )
    results = []
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), *flags],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            print(f"size {n}: failed\n{out.stderr[-2000:]}")
            break
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(res)
        base = results[0]
        print(
            f"N={n:>7}: peak RSS {res['peak_rss_mb']:7.0f} MB "
            f"({res['peak_rss_mb'] / base['peak_rss_mb']:.2f}x), fit RSS growth "
            f"{res['fit_peak_mb'] - res['rss_before_fit_mb']:6.0f} MB (anonymous: peak "
            f"{res['fit_peak_anon_mb']:5.0f} MB, "
            f"{res['fit_peak_anon_mb'] / base['fit_peak_anon_mb']:.2f}x; growth "
            f"{res['fit_peak_anon_mb'] - res['anon_before_fit_mb']:5.0f} MB), "
            f"fit {res['fit_s']:7.1f} s, "
            f"{1e3 * res['s_per_utt']:.2f} ms/utt ({res['s_per_utt'] / base['s_per_utt']:.2f}x; "
            f"norm {res['norm_per_utt'] / base['norm_per_utt']:.2f}x), "
            f"train {1e3 * res['train_s_per_row']:.2f} ms/row/epoch "
            f"({res['train_s_per_row'] / base['train_s_per_row']:.2f}x); "
            f"manifest+features {res['prep_s']:.0f} s; load {os.getloadavg()[0]:.1f}"
            + (f"; peak GPU {res['peak_gpu_mb']:.0f} MiB" if res.get("peak_gpu_mb") else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
