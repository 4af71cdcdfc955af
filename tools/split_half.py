"""Choose a recipe on half of the target's speakers, report it on the other half.

Issue 10 chooses the recipe on RAVDESS -> ASED and reports ASED's goals on the same speakers,
which flatters the choice. This script repeats the choice on held-out speakers: each split
deals every gender's speakers at random into two halves (choice half A, report half B); on A a
rule picks one candidate among those meeting every goal (UAR >= 0.74, dSP <= 0.02, dEO max <=
0.05, means over the tasks and seeds); the pick is then scored on B. It reads the stored
target predictions only (no training), so every candidate must have them for the same seeds.

Usage: python tools/split_half.py RUN_DIR:METHOD[=NAME] [...] [--n-splits 200] [--seed 0]
e.g. python tools/split_half.py runs/cand13-ased:recommended runs/cand13-ased:cand-wd30
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fairser.metrics import (
    demographic_parity_difference,
    equalized_odds_difference,
    unweighted_average_recall,
)

GOALS = {"uar": (">=", 0.74), "dsp": ("<=", 0.02), "deo_max": ("<=", 0.05)}


def load_candidates(specs: list[str], *, seeds: list[int]) -> pd.DataFrame:
    """Target prediction rows of every ``RUN_DIR:METHOD[=NAME]``, the method renamed NAME."""
    frames = []
    for spec in specs:
        run, _, rest = spec.partition(":")
        method, _, name = rest.partition("=")
        p = pd.read_parquet(Path(run) / "predictions.parquet")
        p = p[(p["role"] == "target") & (p["method"] == method) & p["seed"].isin(seeds)]
        if p.empty:
            raise SystemExit(f"{spec}: no target predictions of method {method!r} "
                             f"for seeds {seeds}")
        missing = sorted(set(seeds) - set(p["seed"].unique()))
        if missing:
            raise SystemExit(f"{spec}: no target predictions for seeds {missing}; "
                             "pass --seeds with the seeds every candidate has")
        label = name or method
        if any(f["method"].iloc[0] == label for f in frames):
            raise SystemExit(f"{spec}: a second candidate named {label!r}; give it =NAME")
        frames.append(p.assign(method=label))
    out = pd.concat(frames, ignore_index=True)
    out["gender"] = out["gender"].astype(str)
    return out


def scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over tasks and seeds of UAR, dSP and dEO max, per candidate."""
    per_fit = []
    for (method, emotion, seed), d in rows.groupby(["method", "emotion", "seed"], sort=True):
        y, p, g = d["y_true"].to_numpy(), d["y_pred"].to_numpy(), d["gender"].to_numpy()
        per_fit.append({
            "method": method, "emotion": emotion, "seed": seed,
            "uar": unweighted_average_recall(y, p),
            "dsp": demographic_parity_difference(y, p, sensitive_features=g),
            "deo_max": equalized_odds_difference(y, p, sensitive_features=g),
        })
    return pd.DataFrame(per_fit).groupby("method")[list(GOALS)].mean()


def meets(table: pd.DataFrame) -> pd.Series:
    """Whether each candidate meets every goal of :data:`GOALS`."""
    ok = pd.Series(True, index=table.index)
    for col, (op, bound) in GOALS.items():
        ok &= table[col] >= bound if op == ">=" else table[col] <= bound
    return ok


def split_half(rows: pd.DataFrame, *, n_splits: int, seed: int) -> pd.DataFrame:
    """One row per split and rule: the pick on half A and its scores on half B."""
    speakers = rows.drop_duplicates("speaker")[["speaker", "gender"]]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_splits):
        half_a: list[str] = []
        for _, s in speakers.groupby("gender"):
            names = s["speaker"].to_numpy().copy()
            rng.shuffle(names)
            half_a += list(names[: len(names) // 2])
        in_a = rows["speaker"].isin(half_a)
        a, b = scores(rows[in_a]), scores(rows[~in_a])
        ok = a[meets(a)]
        for rule, pick in (("highest UAR", ok["uar"].idxmax() if len(ok) else None),
                           ("lowest dEO max", ok["deo_max"].idxmin() if len(ok) else None)):
            rec = {"split": i, "rule": rule, "pick": pick or "(none meets the goals on A)"}
            if pick is not None:
                rec.update({f"B_{k}": b.loc[pick, k] for k in GOALS})
                rec["B_meets"] = bool(meets(b).loc[pick])
            out.append(rec)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", help="RUN_DIR:METHOD[=NAME]")
    ap.add_argument("--n-splits", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args()
    rows = load_candidates(args.candidates, seeds=args.seeds)
    print("all speakers:\n" + scores(rows).round(3).to_string())
    res = split_half(rows, n_splits=args.n_splits, seed=args.seed)
    for rule, d in res.groupby("rule"):
        print(f"\nrule: {rule} among the candidates meeting every goal on half A "
              f"({args.n_splits} splits)")
        print("  picks: " + ", ".join(f"{k} {v}" for k, v in d["pick"].value_counts().items()))
        picked = d.dropna(subset=["B_uar"])
        if len(picked):
            print("  the pick on half B: " + ", ".join(
                f"{k} {picked['B_' + k].mean():.3f}" for k in GOALS)
                + f"; meets every goal on B in {picked['B_meets'].mean():.0%} of those splits")


if __name__ == "__main__":
    main()
