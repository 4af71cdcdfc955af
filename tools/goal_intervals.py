"""Speaker-bootstrap intervals of the issue-10 goal statistics: means over tasks and seeds.

The grid's per-fit intervals (results.csv ``*_lo`` / ``*_hi``) are those of one task and one
seed. The goals are stated on the mean over the four binary tasks and the seeds, so this script
resamples the speakers ONCE per resample (within gender, as ``fairser.speaker_bootstrap``) and
applies that draw to every task and seed of a method, giving the interval of the mean itself.

Usage: python tools/goal_intervals.py RUN_DIR [RUN_DIR ...] [--n-boot 1000]
(reads RUN_DIR/predictions.parquet; target rows; methods with all their tasks).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fairser.metrics import speaker_bootstrap
from fairser.metrics.compare import _runs_matrix, predictions_table

METRICS = ("uar", "dsp", "deo_max")


def goal_intervals(predictions: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0,
                   confidence: float = 0.95) -> pd.DataFrame:
    """Estimate and percentile interval of each metric's mean over tasks and seeds, per method.

    Every task of a method must share its speakers (the same rows with another label), so that
    one speaker draw applies to all of them; a method whose tasks differ in speakers is skipped.
    """
    df, _ = predictions_table(predictions[predictions["role"] == "target"], None)
    out = []
    for method, part in df.groupby("method", sort=False):
        samples, estimates, speakers = [], [], None
        for emotion, task in part.groupby("emotion", sort=True):
            first = task.drop_duplicates("utt_id").set_index("utt_id")
            runs, _ = _runs_matrix(task, first.index, what=f"{method} {emotion}")
            spk = tuple(sorted(set(first["speaker"].astype(str))))
            if speakers is not None and spk != speakers:
                samples = []
                break
            speakers = spk
            res = speaker_bootstrap(first["y_true"].to_numpy(), runs,
                                    sensitive_features=first["gender"].to_numpy(),
                                    speakers=first["speaker"].to_numpy(), n_boot=n_boot,
                                    seed=seed, confidence=confidence, group_order=("M", "F"))
            samples.append(res.samples[list(METRICS)].to_numpy())
            estimates.append([res.estimate[m] for m in METRICS])
        if not samples:
            continue
        mean = np.nanmean(np.stack(samples), axis=0)  # (n_boot, metrics): mean over tasks
        q = 100 * (1 - confidence) / 2
        row = {"method": method, "tasks": len(samples)}
        for j, m in enumerate(METRICS):
            row[m] = float(np.mean([e[j] for e in estimates]))
            row[f"{m}_lo"], row[f"{m}_hi"] = np.nanpercentile(mean[:, j], [q, 100 - q])
        out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    for run in args.runs:
        table = goal_intervals(pd.read_parquet(run / "predictions.parquet"), n_boot=args.n_boot)
        print(f"{run}:")
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
