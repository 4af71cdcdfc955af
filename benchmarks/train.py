"""Benchmark of the training loop.

1. Loop overhead: our two-stage loop (:func:`fairser.training.loop.run_stages`, no early stop,
   no checkpoints) divided by a bare PyTorch loop doing the same optimisation steps with the
   same network (goal: <= 1.15). The bare loop runs over tensors stacked in memory before its
   timer (the fastest possible, and what fit did before streaming). Ours is timed twice, each
   time from a fresh :func:`~fairser.training.prepare.prepare_fit`: (a) the loop alone with
   every row already in memory (the pooled-row cache filled before the timer), like for like
   with the bare loop; (b) end to end, prepare_fit + loop (the source rows are read once by the
   input-statistics pass and kept; the target and dev rows are read in the first epochs)
   against the bare loop plus its stacking, and against the bare loop that also stacks and
   evaluates the dev rows every epoch (like for like). Our loop also evaluates the source dev
   split after every epoch (for early stopping) and pads every batch from the cached rows; the
   plain bare loop does neither. Two more bare references: one that reads the rows per batch
   with numpy (the bare equivalent of streaming) and one that adds a dev forward pass and UAR
   per epoch.
2. Seconds per run of every method with the default configuration (early stopping on).
3. With ``--seeds N``: target UAR (every target row, binary ``--emotion`` vs rest) of
   source-only and pa over seeds 0..N-1, ``bucketing`` false vs true, default configuration
   otherwise; the bucketing change next to the seed-to-seed spread.

Data: RAVDESS -> CASIA (angry, happy, sad, neutral rows) with Whisper-base layer-2 features
when ../shared/data exists, else the synthetic espeak-ng pair with log-mel features.

Usage: ``python benchmarks/train.py [--emotion angry] [--epochs 4] [--threads 1] [--synthetic]
[--workers 0] [--skip-loop] [--skip-methods] [--seeds 3]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fairser.methods import METHODS
from fairser.models import coral_loss, weighted_bce
from fairser.training import fit
from fairser.training.loop import run_stages
from fairser.training.prepare import prepare_fit
from fairser.training.rows import collate, split_arrays
from fairser.training.steps import Runtime, evaluate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EMOTIONS = ["angry", "happy", "sad", "neutral"]


def load_data(synthetic: bool):
    """(source, target, features, description)."""
    from fairser.features import extract

    if not synthetic and SHARED.is_dir():
        from fairser.corpora import load_corpus

        def keep(m: pd.DataFrame) -> pd.DataFrame:
            return m[m["emotion"].isin(EMOTIONS).fillna(False).to_numpy(bool)].reset_index(
                drop=True
            )

        src = keep(load_corpus(f"ravdess:{SHARED / 'ravdess'}"))
        tgt = keep(load_corpus(f"casia:{SHARED / 'casia'}"))
        feats = extract(pd.concat([src, tgt], ignore_index=True), "whisper-base", layers=[2])
        return src, tgt, feats, "RAVDESS->CASIA, whisper-base layer 2"
    from fairser.corpora.synthetic import generate_pair

    src, tgt = generate_pair(seed=0)
    feats = extract(pd.concat([src, tgt], ignore_index=True), "logmel")
    return src, tgt, feats, "synthetic pair, log-mel"


def stacked(prep, split):
    """(x, mask, lengths) tensors of every row of ``split``, stacked once in memory."""
    reader = prep.data.reader.with_(cache=None)  # from the store, not our pooled-row cache
    pairs = enumerate(zip(split.keys, split.corpora, strict=True))
    items = [(i, reader.read(k, str(c))) for i, (k, c) in pairs]
    b = collate(items)
    return b.x, b.mask(), b.lengths


class Streamed:
    """The same rows read per batch from the store with plain numpy (no DataLoader)."""

    def __init__(self, prep, split):
        self.reader, self.split = prep.data.reader.with_(cache=None), split
        self.lengths = torch.from_numpy(split.lengths)

    def __getitem__(self, ii):
        idx = ii.numpy()
        b = collate(
            [
                (int(i), self.reader.read(self.split.keys[i], str(self.split.corpora[i])))
                for i in idx
            ]
        )
        return b.x, b.mask()


def bare_loop(prep, epochs: int, *, streamed: bool, dev: bool = False) -> tuple[float, float]:
    """Same steps as our loop (stage 1 then PA stage 2 with CORAL), nothing else; with
    ``dev``, also a forward pass over the dev rows (stacked once) and their UAR after every
    epoch, as our loop does for early stopping."""
    cfg, data = prep.config, prep.data
    net = prep.build_net()
    cw = torch.from_numpy(data.class_weights.astype(np.float32))
    tr, tg = data.train, data.target
    y_all = torch.from_numpy(tr.y)
    if streamed:
        src, tgt = Streamed(prep, tr), Streamed(prep, tg)
        fetch_s, fetch_t = src.__getitem__, tgt.__getitem__
    else:
        xs_all, ms_all, _ = stacked(prep, tr)
        xt_all, mt_all, _ = stacked(prep, tg)
        ls, lt = torch.from_numpy(tr.lengths), torch.from_numpy(tg.lengths)

        def fetch_s(ii):
            t = int(ls[ii].max())
            return xs_all[ii, :, :t], ms_all[ii, :t]

        def fetch_t(ii):
            t = int(lt[ii].max())
            return xt_all[ii, :, :t], mt_all[ii, :t]

    if dev:
        xd, md, _ = stacked(prep, data.dev)
        yd = data.dev.y

    def evaluate_dev() -> float:
        net.eval()
        with torch.inference_mode():
            pred = (torch.sigmoid(net(xd, md, gender=False).logits) >= 0.5).numpy()
        net.train()
        return float(np.mean([np.mean(pred[yd == c] == c) for c in np.unique(yd)]))

    n = len(tr)
    b_t = round(cfg.batch_size * cfg.target_fraction)
    b_s = cfg.batch_size - b_t
    rng = np.random.default_rng(0)
    pad = torch.nn.functional.pad
    t0, c0 = time.perf_counter(), time.process_time()
    for stage, lr in ((1, cfg.lr), (2, cfg.resolved_stage2_lr)):
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        bs = cfg.batch_size if stage == 1 else b_s
        for _ in range(epochs):
            order = rng.permutation(n)
            for idx in np.array_split(order, -(-n // bs)):
                ii = torch.from_numpy(idx)
                x, m = fetch_s(ii)
                y = y_all[ii]
                if stage == 2:
                    jj = torch.from_numpy(rng.integers(0, len(tg), len(idx)))
                    xt, mt = fetch_t(jj)
                    t_len = max(x.shape[2], xt.shape[2])
                    x = pad(x, (0, 0, 0, t_len - x.shape[2]))
                    m = pad(m, (0, t_len - m.shape[1]))
                    xt = pad(xt, (0, 0, 0, t_len - xt.shape[2]))
                    mt = pad(mt, (0, t_len - mt.shape[1]))
                    out = net(torch.cat([x, xt]), torch.cat([m, mt]))
                    k = len(idx)
                    loss = weighted_bce(out.logits[:k], y, cw[y]) + coral_loss(
                        out.embedding[:k], out.embedding[k:]
                    )
                else:
                    out = net(x, m, gender=False)
                    loss = weighted_bce(out.logits, y, cw[y])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                opt.step()
            if dev:
                evaluate_dev()
    return time.perf_counter() - t0, time.process_time() - c0


def seeds_table(src, tgt, feats, *, emotion: str, threads: int, seeds: int) -> None:
    """Part 3: target UAR per method, bucketing and seed (default config otherwise)."""
    from fairser.metrics import uar_from_codes

    print(f"part 3: target UAR, default config, seeds 0-{seeds - 1}, bucketing false vs true")
    for name in ("source-only", "pa"):
        for bucketing in (False, True):
            uars = []
            for seed in range(seeds):
                m = fit(
                    source=src,
                    target=tgt,
                    features=feats,
                    method=name,
                    emotion=emotion,
                    config={"num_threads": threads, "bucketing": bucketing, "device": "cpu"},
                    seed=seed,
                    progress=False,
                )
                y = m.encode_labels(tgt)
                keep = y >= 0
                pred = m.predict(tgt, feats)
                uars.append(uar_from_codes(y[keep], pred[keep], n_classes=2))
            cells = " ".join(f"{u:.3f}" for u in uars)
            print(
                f"  {name:12s} bucketing {str(bucketing).lower():5s}: {cells}  "
                f"mean {np.mean(uars):.3f} sd {np.std(uars, ddof=1) if seeds > 1 else 0:.3f}",
                flush=True,
            )


def main() -> None:
    """Parse the options, run both parts and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emotion", default="angry")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per stage for part 1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--synthetic", action="store_true", help="use the synthetic pair")
    ap.add_argument("--skip-methods", action="store_true", help="no part 2")
    ap.add_argument("--skip-loop", action="store_true", help="no part 1")
    ap.add_argument("--seeds", type=int, default=0, help="part 3 over this many seeds (0: no)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers of our loop")
    ap.add_argument(
        "--bucketing",
        choices=["on", "off"],
        default="off",
        help="our loop with length bucketing (off: the bare loops' batch sizes)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    src, tgt, feats, what = load_data(args.synthetic)
    print(f"data: {what}; emotion {args.emotion}; torch threads {args.threads}")
    if not args.skip_loop:
        loop_overhead(src, tgt, feats, args)
    if not args.skip_methods:
        method_times(src, tgt, feats, args)
    if args.seeds:
        seeds_table(src, tgt, feats, emotion=args.emotion, threads=args.threads, seeds=args.seeds)


def loop_overhead(src, tgt, feats, args) -> None:
    """Part 1: our fit against the bare loops, loop alone and end to end."""
    e = args.epochs
    cfg = {
        "stage1_epochs": e,
        "stage2_epochs": e,
        "patience": e + 1,
        "num_threads": args.threads,
        "num_workers": args.workers,
        "bucketing": args.bucketing == "on",
        "device": "cpu",
    }

    def prepare():
        return prepare_fit(
            source=src, target=tgt, features=feats, method="pa", emotion=args.emotion,
            config=cfg, seed=0,
        )

    prep = prepare()
    d = prep.data
    print(
        f"rows: source train {len(d.train)}, dev {len(d.dev)}, target {len(d.target)}; "
        f"frames <= {int(d.train.lengths.max())} x {feats.dim} dims; "
        f"our loop: {args.workers} DataLoader workers, bucketing {args.bucketing}; "
        f"pooled-row cache {'on' if d.reader.cache is not None else 'off'}"
    )
    rt = Runtime(num_workers=args.workers)

    def ours(preload: bool) -> tuple[float, float, float]:
        """(prepare s, loop wall s, loop CPU s) of one fit from a fresh prepare_fit."""
        t0 = time.perf_counter()
        p = prepare()
        prep_s = time.perf_counter() - t0
        if preload:  # every row in memory before the timer, as the bare loop's tensors are
            for split in (p.data.train, p.data.target, p.data.dev):
                for _ in split_arrays(p.data.reader, split, raw=False):
                    pass
        net = p.build_net()
        t0, c0 = time.perf_counter(), time.process_time()
        run_stages(
            net, method=p.method, cfg=p.config, data=p.data, seed=0, checkpointer=None,
            progress=False, runtime=rt,
        )
        return prep_s, time.perf_counter() - t0, time.process_time() - c0

    cold, warm, bare, bare_s, bare_d, stack, stack_dev = [], [], [], [], [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        stacked(prep, d.train), stacked(prep, d.target)
        stack.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stacked(prep, d.dev)
        stack_dev.append(time.perf_counter() - t0)
        bare.append(bare_loop(prep, e, streamed=False))
        bare_s.append(bare_loop(prep, e, streamed=True))
        bare_d.append(bare_loop(prep, e, streamed=False, dev=True))
        cold.append(ours(preload=False))
        warm.append(ours(preload=True))
    net = prep.build_net()
    feeds = d.feeds(rt, cache_mb=prep.config.cache_mb)
    evaluate(net, feeds, y=d.dev.y, binary=True, cfg=prep.config, rt=rt)  # rows read, kept
    t0 = time.perf_counter()
    for _ in range(2 * e):
        evaluate(net, feeds, y=d.dev.y, binary=True, cfg=prep.config, rt=rt)
    dev_s = time.perf_counter() - t0

    def best(runs, i):
        return min(r[i] for r in runs)

    w_loop, w_cpu = best(warm, 1), best(warm, 2)
    c_loop = best(cold, 1)
    c_total = min(p + w for p, w, _ in cold)
    b, bc, b_stack = best(bare, 0), best(bare, 1), min(stack)
    b_total = min(s + w for s, (w, _) in zip(stack, bare, strict=True))
    print(f"part 1 (best of {args.repeats}); goal ours / bare in-memory <= 1.15")
    print(
        f"  loop alone, every row in memory before the timer on both sides: wall ours "
        f"{w_loop:.2f}s / bare {b:.2f}s = {w_loop / b:.3f}; CPU ours {w_cpu:.2f}s / bare "
        f"{bc:.2f}s = {w_cpu / bc:.3f}"
    )
    print(
        f"  end to end: ours prepare_fit + loop {c_total:.2f}s / bare stacking + loop "
        f"{b_total:.2f}s = {c_total / b_total:.3f}  (ours reads the target and dev rows in "
        f"its first epochs: loop alone {c_loop:.2f}s = {c_loop / b:.3f} of the bare loop; "
        f"bare stacking {b_stack:.2f}s)"
    )
    bd_total = min(
        s + sd + w for s, sd, (w, _) in zip(stack, stack_dev, bare_d, strict=True)
    )
    print(
        f"  end to end, like for like (the bare loop also stacks the dev rows and evaluates "
        f"them after every epoch, as ours does): {c_total:.2f}s / {bd_total:.2f}s = "
        f"{c_total / bd_total:.3f}"
    )
    refs = (("streamed", bare_s), ("in-mem+dev", bare_d))
    for name, ref in refs:
        rb, rbc = best(ref, 0), best(ref, 1)
        print(
            f"  bare {name:10s}: wall ours {w_loop:.2f}s / bare {rb:.2f}s = {w_loop / rb:.3f}; "
            f"CPU ours {w_cpu:.2f}s / bare {rbc:.2f}s = {w_cpu / rbc:.3f}"
        )
    print(
        f"  in ours: dev evaluation (every epoch, for early stopping; rows kept) "
        f"{dev_s:.2f}s ({dev_s / w_loop:.1%} of the loop)"
    )
    print(f"  load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def method_times(src, tgt, feats, args) -> None:
    """Part 2: seconds per run of every method, default config."""
    print("part 2: seconds per run, default config (early stopping on)")
    for name in METHODS:
        t0 = time.perf_counter()
        m = fit(
            source=src,
            target=tgt,
            features=feats,
            method=name,
            emotion=args.emotion,
            config={"num_threads": args.threads},
            seed=0,
            progress=False,
        )
        secs = time.perf_counter() - t0
        epochs = {
            k: sum(1 for h in m.history["epochs"] if h["stage"] == int(k[-1]))
            for k in m.history["best_epoch"]
        }
        print(f"  {name:12s} {secs:6.1f}s  epochs run {epochs}")


if __name__ == "__main__":
    main()
