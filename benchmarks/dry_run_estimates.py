"""What ``fairser run --dry-run`` would estimate for configs/paper/* at MSP-Podcast scale.

The paper's corpora are licensed, so their manifests are stood in for by synthetic ones of the
same size: ``--rows`` utterances (default 151,000, about MSP-Podcast's labelled set) with
durations drawn uniformly from 2.75 to 11 s (MSP-Podcast's segment range), 40 % of them in the
four emotions of the configs, speakers of both genders, and splits train / dev / test of
70 / 15 / 15 %. The target (BIIC-Podcast) gets a manifest of ``--target-rows`` utterances drawn
the same way (default: as many as the source; the store size scales linearly with the rows).
No audio is read. For each config the script prints the fits, the feature-store size per
corpus and in total, the peak memory of one network fit (streamed), each term apart, and that
of one linear-baseline fit (in memory; grows with the rows); the formulas are in
:mod:`fairser.experiments.estimate`. ``--num-workers N`` estimates the network fits with N
DataLoader workers (the GPU recipe of docs/scaling.md uses 4) instead of the config's.

Usage: ``python benchmarks/dry_run_estimates.py [--rows 151000] [--target-rows N] [--seed 0]
[--num-workers N]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairser.experiments import default_backend, load_config, plan_fits
from fairser.experiments.data import source_with_splits, target_roles
from fairser.experiments.dryrun import estimate_cost
from fairser.experiments.estimate import human_bytes, store_bytes
from fairser.experiments.planning import training_options

REPO = Path(__file__).resolve().parents[1]
EMOTIONS = np.array(["angry", "happy", "sad", "neutral", "contempt", "disgust", "surprise",
                     "fear", "other"])


def synthetic_manifest(corpus: str, rows: int, *, seed: int) -> pd.DataFrame:
    """A manifest of ``rows`` utterances (no audio): 2.75-11 s, both genders, 70/15/15 splits."""
    rng = np.random.default_rng(seed)
    speakers = rng.integers(0, max(2, rows // 60), rows)
    emotion = np.where(rng.random(rows) < 0.4, rng.choice(EMOTIONS[:4], rows),
                       rng.choice(EMOTIONS[4:], rows))
    split = rng.choice(np.array(["train", "dev", "test"]), rows, p=[0.7, 0.15, 0.15])
    df = pd.DataFrame({
        "corpus": corpus, "utt_id": [f"{corpus}-{i:06d}" for i in range(rows)],
        "path": "", "speaker": [f"{corpus}-spk{s}" for s in speakers],
        "gender": np.where(speakers % 2 == 0, "M", "F"), "emotion": emotion, "split": split,
        "language": "und", "duration_s": rng.uniform(2.75, 11.0, rows)})
    for col in df.columns[:-1]:
        df[col] = df[col].astype("string")
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=151_000)
    ap.add_argument("--target-rows", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-workers", type=int, default=None,
                    help="DataLoader workers per network fit (default: the config's)")
    args = ap.parse_args()
    for var in ("MSP_PODCAST_ROOT", "BIIC_PODCAST_ROOT"):
        os.environ.setdefault(var, "/data/placeholder")
    backend = default_backend()
    manifests = {"msp-podcast": synthetic_manifest("msp-podcast", args.rows, seed=args.seed),
                 "biic-podcast": synthetic_manifest("biic-podcast",
                                                    args.target_rows or args.rows,
                                                    seed=args.seed + 1)}
    for path in sorted((REPO / "configs" / "paper").glob("*.yaml")):
        start = time.perf_counter()
        cfg = load_config(path)
        source = source_with_splits(manifests[cfg.source.kind], cfg.source_split)
        targets = {t.label: manifests[t.kind] for t in cfg.targets}
        roles = {k: target_roles(v, cfg.target_split) for k, v in targets.items()}
        adapt = {k: v[0] for k, v in roles.items()}
        shape = backend.describe_frontend(cfg.features.frontend, cfg.features.layers)
        options = backend.train_config(training_options(cfg, ()))
        if args.num_workers is not None:
            options = options.model_copy(update={"num_workers": args.num_workers})
        fits = plan_fits(cfg)
        n_baselines = len(fits) - len(plan_fits(cfg, baselines=False))
        store, memory, floor = estimate_cost(cfg, source=source, targets=targets, adapt=adapt,
                                             shape=shape, options=options,
                                             baselines=n_baselines > 0,
                                             evals={k: v[1] for k, v in roles.items()})
        print(f"\n{path.relative_to(REPO)}: {len(fits)} fits; frontend {shape.name} "
              f"layers={cfg.features.layers} ({shape.frame_rate:g} frames/s x {shape.dim} x "
              f"{shape.n_layers} layer(s) x {shape.dtype})")
        for label, df in [(cfg.source.label, source), *targets.items()]:
            hours = df["duration_s"].sum() / 3600
            size = store_bytes(df["duration_s"].to_numpy(), shape)
            print(f"  {label}: {len(df)} rows, {hours:.0f} h -> {human_bytes(size)}")
        print(f"  feature store total: {human_bytes(store)}")
        print(f"  peak per network fit: {human_bytes(memory.total)} = max(training step "
              f"{human_bytes(memory.train)}, prediction batch {human_bytes(memory.evaluate)}) + "
              f"parameters/optimiser {human_bytes(memory.params)} + torch "
              f"{human_bytes(memory.overhead)} + {options.num_workers} DataLoader workers "
              f"{human_bytes(memory.workers)} ({memory.frames} frames per clip, "
              f"{memory.rows} rows read)")
        if floor is not None:
            print(f"  peak per linear-baseline fit ({n_baselines} of them): "
                  f"{human_bytes(floor.total)} = max(fitting {human_bytes(floor.fit)}, scoring "
                  f"{human_bytes(floor.evaluate)}) ({floor.rows} source train rows x "
                  f"{floor.width} values, {cfg.linear_baseline_norm} norm)")
        print(f"  (estimated in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
