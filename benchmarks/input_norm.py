"""Input standardisation: ``input_norm: source`` vs ``per-corpus`` on RAVDESS -> CASIA.

Protocol: RAVDESS (source; its own train split trains, its dev split early-stops) and CASIA
(target), both restricted to rows whose emotion is angry, happy, sad or neutral. Every CASIA
row of those emotions is the stage-2 target (``target_split: null``; target emotion labels are
never read in training) and every one is scored. For each method, input_norm, seed and the
four binary tasks (emotion vs the other three), the default TrainConfig (plus ``num_threads``
and ``input_norm``) is fitted; the table gives the target UAR and the target dSP (demographic
parity difference between CASIA's genders, threshold 0.5), each averaged over the four tasks,
per seed and over seeds. ``source-only`` sees no target in training: with ``per-corpus`` it
standardises CASIA with the statistics of the CASIA rows it predicts (test-time adaptation).
A reference line gives the linear probe (logistic regression on mean-pooled features trained
on the RAVDESS train rows) with the same two standardisations.

Usage: ``python benchmarks/input_norm.py [--frontend whisper-base] [--layers 2] [--seeds 0 1]
[--methods source-only pa pa-cfa] [--threads 1] [--dtype float32] [--json OUT.json]``
(eGeMAPS functionals overflow float16: ``--frontend egemaps-functionals --layers --dtype
float32``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from fairser.metrics import demographic_parity_difference, unweighted_average_recall
from fairser.training import fit

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EMOTIONS = ["angry", "happy", "sad", "neutral"]
NORMS = ["source", "per-corpus"]


def load_data(frontend: str, layers: list[int] | None, dtype: str | None):
    """(source, target, features) for RAVDESS -> CASIA, four emotions."""
    from fairser.corpora import load_corpus
    from fairser.features import extract

    def keep(m: pd.DataFrame) -> pd.DataFrame:
        return m[m["emotion"].isin(EMOTIONS).fillna(False).to_numpy(bool)].reset_index(drop=True)

    src = keep(load_corpus(f"ravdess:{SHARED / 'ravdess'}"))
    tgt = keep(load_corpus(f"casia:{SHARED / 'casia'}"))
    feats = extract(pd.concat([src, tgt], ignore_index=True), frontend, layers=layers, dtype=dtype)
    return src, tgt, feats


def _pooled(rows: pd.DataFrame, feats) -> np.ndarray:
    out = []
    for c, u in zip(rows["corpus"], rows["utt_id"], strict=True):
        a = np.asarray(feats[f"{c}/{u}"], np.float64)
        out.append(a.mean(1).reshape(-1))
    return np.stack(out)


def _z(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return (a - ref.mean(0)) / np.maximum(ref.std(0), 1e-6)


def linear_probe(src, tgt, feats) -> dict[str, tuple[float, float]]:
    """Mean target (UAR, dSP) of the linear probe over the four tasks, per standardisation."""
    tr = src[src["split"].astype("string") == "train"].reset_index(drop=True)
    xs, xt = _pooled(tr, feats), _pooled(tgt, feats)
    g = tgt["gender"].astype(str).to_numpy()
    res = {}
    for norm in NORMS:
        a, b = (_z(xs, xs), _z(xt, xs)) if norm == "source" else (_z(xs, xs), _z(xt, xt))
        uars, dsps = [], []
        for emo in EMOTIONS:
            ys = (tr["emotion"].astype(str) == emo).to_numpy(int)
            yt = (tgt["emotion"].astype(str) == emo).to_numpy(int)
            clf = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced")
            pred = clf.fit(a, ys).predict(b)
            uars.append(unweighted_average_recall(yt, pred))
            dsps.append(demographic_parity_difference(yt, pred, sensitive_features=g))
        res[norm] = (float(np.mean(uars)), float(np.mean(dsps)))
    return res


def main() -> None:
    """Run every fit and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frontend", default="whisper-base")
    ap.add_argument("--layers", type=int, nargs="*", default=[2], help="none: frontend default")
    ap.add_argument("--dtype", default=None, help="feature dtype (float32 for egemaps-functionals)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--methods", nargs="+", default=["source-only", "pa", "pa-cfa"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write every run's figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layers = args.layers or None
    src, tgt, feats = load_data(args.frontend, layers, args.dtype)
    g = tgt["gender"].astype(str).to_numpy()
    print(
        f"RAVDESS -> CASIA, {args.frontend} layers {layers}; source train/dev "
        f"{(src['split'] == 'train').sum()}/{(src['split'] == 'dev').sum()} rows, target "
        f"{len(tgt)} rows (all used unlabelled in training and all scored); seeds {args.seeds}; "
        f"torch threads {args.threads}"
    )
    runs = []
    for method in args.methods:
        for norm in NORMS:
            for seed in args.seeds:
                for emo in EMOTIONS:
                    t0 = time.perf_counter()
                    m = fit(
                        source=src,
                        target=tgt,
                        features=feats,
                        method=method,
                        emotion=emo,
                        config={"num_threads": args.threads, "input_norm": norm},
                        seed=seed,
                        progress=False,
                    )
                    pred = m.predict(tgt, feats)
                    y = m.encode_labels(tgt)
                    runs.append(
                        {
                            "method": method,
                            "input_norm": norm,
                            "seed": seed,
                            "emotion": emo,
                            "uar": unweighted_average_recall(y, pred),
                            "dsp": demographic_parity_difference(y, pred, sensitive_features=g),
                            "seconds": time.perf_counter() - t0,
                        }
                    )
                    r = runs[-1]
                    print(
                        f"  {method:11s} {norm:10s} seed {seed} {emo:8s} UAR {r['uar']:.3f} "
                        f"dSP {r['dsp']:.3f} ({r['seconds']:.1f}s)",
                        flush=True,
                    )
    df = pd.DataFrame(runs)
    per_seed = df.groupby(["method", "input_norm", "seed"], sort=False)[["uar", "dsp"]].mean()
    print(f"\nmean over the 4 binary tasks ({args.frontend}); UAR and dSP on all CASIA rows")
    head = " ".join(f"UAR s{s}" for s in args.seeds)
    print(f"{'method':11s} {'input_norm':10s} {head}  UAR mean  dSP mean  s/fit")
    for (method, norm), part in df.groupby(["method", "input_norm"], sort=False):
        seeds = " ".join(f"{per_seed.loc[(method, norm, s), 'uar']:6.3f}" for s in args.seeds)
        print(
            f"{method:11s} {norm:10s} {seeds}  {part['uar'].mean():8.3f}  "
            f"{part['dsp'].mean():8.3f}  {part['seconds'].mean():5.1f}"
        )
    for norm, (uar, dsp) in linear_probe(src, tgt, feats).items():
        print(f"{'lin. probe':11s} {norm:10s} {'':{len(head)}s}  {uar:8.3f}  {dsp:8.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
