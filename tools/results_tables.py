"""Markdown tables for docs/results.md from finished (or partly finished) run folders.

Reads every fit record under ``RUN/records/*.json`` (the rows that ``results.csv`` is made
of, so a grid still running can be summarised too), keeps the target rows of the scored
fits, averages the four binary tasks per seed (or takes the multi-class row), and prints
per method (and sweep point): mean and sd over seeds of UAR, dSP and dEO max, the mean
speaker-bootstrap 95 % interval of UAR, the gender probe(s) and the own gender head.

Usage: ``python tools/results_tables.py RUN [RUN ...] [--per-emotion METHOD]``
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np
import pandas as pd


def load(folders: list[str]) -> pd.DataFrame:
    rows = []
    for folder in folders:
        for f in sorted(glob.glob(str(Path(folder) / "records" / "*.json"))):
            rec = json.loads(Path(f).read_text(encoding="utf-8"))
            if rec.get("status", "ok") != "ok":
                continue
            rows.extend(rec.get("rows", []))
    df = pd.DataFrame(rows)
    if df.empty:
        raise SystemExit(f"no scored fit records under {folders}")
    return df[df["role"] == "target"].copy()


def fmt(mean: float, sd: float | None = None) -> str:
    if mean is None or not np.isfinite(mean):
        return "n/a"
    if sd is None or not np.isfinite(sd):
        return f"{mean:.3f}"
    return f"{mean:.3f} ({sd:.3f})"


def _sd(g: pd.DataFrame, column: str) -> float | None:
    return g[column].std(ddof=1) if len(g) > 1 else None


def table(t: pd.DataFrame) -> str:
    t = t.copy()
    t["sweep"] = t.get("sweep", pd.Series("", index=t.index)).fillna("")
    cols = ["uar", "uar_lo", "uar_hi", "dsp", "deo_max", "probe", "probe_mlp", "gc_acc"]
    cols = [c for c in cols if c in t.columns]
    per_seed = t.groupby(["method", "sweep", "seed"])[cols].mean(numeric_only=True)
    n_tasks = t.groupby(["method", "sweep", "seed"])["emotion"].nunique()
    lines = [
        "| method | sweep | seeds | tasks | UAR mean (sd) | UAR 95% CI | dSP | dEO max | probe | "
        "own gender head |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (method, sweep), g in per_seed.groupby(level=[0, 1]):
        k = n_tasks.loc[(method, sweep)]
        lines.append(
            f"| {method} | {sweep or '-'} | {len(g)} | {int(k.min())}-{int(k.max())} | "
            f"{fmt(g['uar'].mean(), _sd(g, 'uar'))} | "
            f"{g['uar_lo'].mean():.3f}-{g['uar_hi'].mean():.3f} | "
            f"{fmt(g['dsp'].mean(), _sd(g, 'dsp'))} | "
            f"{fmt(g['deo_max'].mean(), _sd(g, 'deo_max'))} | "
            f"{fmt(g['probe'].mean()) if 'probe' in g else 'n/a'} | "
            f"{fmt(g['gc_acc'].mean()) if 'gc_acc' in g else 'n/a'} |"
        )
    return "\n".join(lines)


def per_emotion(t: pd.DataFrame, method: str) -> str:
    g = t[t["method"] == method].groupby("emotion")[["uar", "dsp", "deo_max"]].agg(["mean", "std"])
    lines = ["| emotion | UAR | dSP | dEO max |", "|---|---|---|---|"]
    for emo, r in g.iterrows():
        lines.append(
            f"| {emo} | {fmt(r[('uar', 'mean')], r[('uar', 'std')])} | "
            f"{fmt(r[('dsp', 'mean')], r[('dsp', 'std')])} | "
            f"{fmt(r[('deo_max', 'mean')], r[('deo_max', 'std')])} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--per-emotion", default=None)
    args = ap.parse_args()
    t = load(args.runs)
    print(table(t))
    if args.per_emotion:
        print()
        print(per_emotion(t, args.per_emotion))


if __name__ == "__main__":
    main()
