"""Fairness levers on real cross-corpus data: which combination reaches the goals.

Protocol (the evidence behind docs/levers.md): whisper-base layer 2, mean-pooled. Source
RAVDESS, targets ASED (65 speakers, the one target where a gender gap means something), CASIA,
EmoDB; all restricted to angry, happy, sad, neutral for the classifiers and the metrics.
Seed s is the seed of RAVDESS's speaker-disjoint, gender-stratified split
(``load_corpus("ravdess:...", options={"seed": s})``): a logistic regression
(C=1, class_weight=balanced) trained on its 16 train actors' rows is scored on every target
row of the four emotions. Four binary tasks (emotion vs the other three) and one 4-class task.

Levers (``fairser.levers``), applied cumulatively; none reads a target emotion label:

* ``corpus``: per-corpus z-norm (``SpeakerNorm(strength=0)``: every row gets its corpus's
  frame statistics) - the baseline;
* ``speaker``: per-speaker z-norm over all frames of each speaker's utterances (all its
  utterances, every emotion: label-free; ``--stats-rows task`` uses only the four emotions'
  rows, which reads labels to pick rows);
* ``+leace``: LEACE gender eraser fitted on the pooled, normalised source + target rows with
  their gender labels;
* ``+qleace``: quadratic (QLEACE) eraser, same rows: each gender's mean and covariance moved
  to their barycenter (needs each row's gender when applied);
* ``+pcaK``: before the erasers, projection onto the K leading principal directions of the
  normalised source + target rows (``PrincipalSubspace``; no label read);
* ``+thr``: per-gender thresholds fitted on the unlabelled target scores (binary: keep the
  overall positive rate of the 0.5 rule; 4-class: per-gender log-score offsets).

Reported per target and condition, mean (and std) over seeds: UAR, dSP, dEO max (mean over
the four binary tasks, and per task), the 4-class UAR and dSP (macro), and the logistic and MLP
gender probes (speaker-disjoint folds, balanced accuracy) on the target features the
classifier sees (probes do not depend on the task; cross-fitted when an eraser is used, see
:func:`probes`; the MLP probe runs for the first seed only unless ``--mlp-all-seeds``: ~1-2
min a run); with ``--stats-rows all`` also the logistic probe on ALL target rows. Goals
(issue 10) are checked for ASED and CASIA.

ASED: the ``ased`` corpus adapter when fairser has one, else a ``csv:`` manifest written to
the cache with each speaker's gender by majority of its files (five files carry the other
code, see shared/data/README.md).

Usage: ``python benchmarks/levers.py [--data ../shared/data] [--targets ased casia emodb]
[--seeds 0 1 2 3 4] [--stats-rows all|task] [--source-rows train|all] [--conditions
speaker+thr ...] [--json OUT.json] [--no-mlp] [--mlp-all-seeds]``; ``--show OUT.json``
reprints the tables. Conditions: ``corpus|speaker|uttspeaker`` then ``+pcaK``, ``+leace``,
``+qleace``, ``+thr`` (optionally with a strength, ``+thr0.5``) and ``+cVALUE``. Features
come from the store (``fairser.features.extract``); the first run extracts what is missing
(~15-30 min a corpus on a loaded 2-core machine). Frame moments are cached in
``<cache>/levers-bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from fairser._paths import default_cache_dir
from fairser.corpora import CORPORA, load_corpus, utt_key
from fairser.decision import decide
from fairser.features import extract
from fairser.levers import (
    GenderEraser,
    GroupThresholds,
    PrincipalSubspace,
    QuadraticGenderEraser,
    SpeakerNorm,
    frame_moments,
)
from fairser.metrics import (
    demographic_parity_difference,
    equalized_odds_difference,
    gender_probe,
    unweighted_average_recall,
)
from fairser.metrics.probe import mlp_gender_probe

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EMOTIONS = ["angry", "happy", "sad", "neutral"]
CONDITIONS = ["corpus", "speaker", "speaker+leace", "speaker+qleace", "speaker+thr",
              "speaker+leace+thr", "speaker+qleace+thr", "corpus+thr+c0.01", "speaker+c0.01",
              "speaker+thr+c0.01", "speaker+leace+thr+c0.01", "speaker+qleace+thr+c0.01",
              "speaker+pca128+thr+c0.01", "speaker+pca128+qleace+thr+c0.01"]
#: The recipe chosen on RAVDESS -> ASED (docs/levers.md).
RECIPE = "speaker+pca128+qleace+thr+c0.01"
_ASED_EMOTION = {"n": "neutral", "f": "fear", "h": "happy", "s": "sad", "a": "angry"}
#: Goals of issue 10 per target: (metric, "min"/"max", bound).
GOALS = {
    "ased": [("uar", "min", 0.74), ("dsp", "max", 0.02), ("deo", "max", 0.05),
             ("probe_lr", "max", 0.55), ("probe_mlp", "max", 0.60)],
    "casia": [("uar", "min", 0.65), ("dsp", "max", 0.02), ("deo", "max", 0.05)],
}


# -- data -----------------------------------------------------------------------------------
def ased_manifest(root: Path) -> pd.DataFrame:
    """ASED through its adapter, else a csv: table with per-speaker majority gender."""
    if "ased" in CORPORA:
        return load_corpus(f"ased:{root}")
    rows = []
    for p in sorted(root.glob("*/*.flac")):
        xn, _yy, _aa, gg, bb = p.stem.lower().split("-")
        rows.append({"path": p.relative_to(root).as_posix(), "speaker": bb, "code": gg,
                     "emotion": _ASED_EMOTION[xn[0]]})
    df = pd.DataFrame(rows)
    major = df.groupby("speaker")["code"].agg(lambda s: s.value_counts().idxmax())
    df["gender"] = df["speaker"].map(major).map({"01": "F", "02": "M"})
    table = default_cache_dir() / "levers-bench" / "ased.csv"
    table.parent.mkdir(parents=True, exist_ok=True)
    df.drop(columns="code").to_csv(table, index=False)
    return load_corpus(f"csv:{table}", options={"name": "ased", "audio_root": str(root),
                                                 "language": "am"})


def manifest(name: str, data: Path, *, seed: int = 0) -> pd.DataFrame:
    """The manifest of a corpus (RAVDESS with the speaker split of ``seed``)."""
    if name == "ased":
        return ased_manifest(data / "ased")
    return load_corpus(f"{name}:{data / name}", options={"seed": seed})


def corpus_moments(df: pd.DataFrame, layers: list[int]) -> dict[str, np.ndarray]:
    """Frame count, sum and sum of squares per row (cached by the rows' utterance keys)."""
    keys = [utt_key(c, u) for c, u in zip(df["corpus"], df["utt_id"], strict=True)]
    feats = extract(df, "whisper-base", layers=layers, progress=True)
    tag = f"{df['corpus'].iloc[0]}-whisper-base-{'-'.join(map(str, layers))}-{len(df)}"
    path = default_cache_dir() / "levers-bench" / f"{tag}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if list(z["keys"]) == keys:
                return {k: z[k] for k in ("counts", "sums", "sumsq")}
    counts, sums, sumsq = frame_moments(feats[k] for k in keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, keys=np.asarray(keys), counts=counts, sums=sums, sumsq=sumsq)
    return {"counts": counts, "sums": sums, "sumsq": sumsq}


class Corpus:
    """One corpus's rows with their frame moments."""

    def __init__(self, df: pd.DataFrame, mom: dict[str, np.ndarray]) -> None:
        self.df = df.reset_index(drop=True)
        self.counts, self.sums, self.sumsq = mom["counts"], mom["sums"], mom["sumsq"]
        self.name = str(self.df["corpus"].iloc[0])
        self.speaker = self.df["speaker"].astype(str).to_numpy()
        self.gender = self.df["gender"].astype(str).to_numpy()
        self.emotion = self.df["emotion"].astype("string").fillna("").to_numpy(dtype=object)
        self.task = np.isin(self.emotion, EMOTIONS)
        self.pooled = (self.sums / self.counts[:, None, None]).reshape(len(self.df), -1)


# -- one condition ---------------------------------------------------------------------------
def parse_condition(cond: str) -> dict:
    """``corpus|speaker|uttspeaker`` then any of ``+leace``, ``+thr``, ``+cVALUE``.

    ``uttspeaker``: z-norm per speaker of the mean-pooled rows (utterance-level statistics,
    the issue's reference) instead of the frames; ``leaceW``/``qleaceW``/``thrW``: the lever
    at strength W (default 1); ``pcaK``: project onto K principal directions of the source
    and target rows (label-free) before the erasers; ``cVALUE``: the LR's inverse penalty C.
    """
    tokens = cond.split("+")
    if tokens[0] not in ("corpus", "speaker", "uttspeaker"):
        raise SystemExit(f"condition {cond!r}: start with corpus, speaker or uttspeaker")
    out = {"norm": tokens[0], "pca": 0, "leace": 0.0, "qleace": 0.0, "thr": 0.0, "C": 1.0}
    for tok in tokens[1:]:
        lever = next((n for n in ("leace", "qleace", "thr") if tok.startswith(n)), None)
        if lever:  # at full strength, or part-way: leace0.5, qleace0.5, thr0.5
            out[lever] = float(tok[len(lever):] or 1.0)
        elif tok.startswith("pca"):
            out["pca"] = int(tok[3:])
        elif tok.startswith("c"):
            out["C"] = float(tok[1:])
        else:
            raise SystemExit(f"condition {cond!r}: unknown lever {tok!r} (pcaK, leace, qleace, "
                             "thr, cVALUE)")
    return out


def normalised(src: Corpus, tgt: Corpus, spec: dict, *, stats_rows: str) -> tuple[
        np.ndarray, np.ndarray, str]:
    """Pooled source and target features after the normalisation, and the fallback summary.

    ``stats_rows="all"``: statistics (and the erasers) use every row of each corpus (no label
    read); ``"task"``: only the rows of the four emotions (the rows fairser's
    ``restrict_emotions`` keeps; picking them reads the emotion labels).
    """
    norm = SpeakerNorm(strength=0.0 if spec["norm"] == "corpus" else 1.0, min_utterances=1)
    keep = [_keep(c, stats_rows) for c in (src, tgt)]
    both = list(zip((src, tgt), keep, strict=True))
    if spec["norm"] == "uttspeaker":  # each pooled row is one "frame"
        pooled = [(c.sums[k] / c.counts[k][:, None, None], k) for c, k in both]
        moments = [(np.ones(int(k.sum())), x, np.square(x)) for x, k in pooled]
    else:
        moments = [(c.counts[k], c.sums[k], c.sumsq[k]) for c, k in both]
    norm.fit_moments(
        *(np.concatenate([m[i] for m in moments]) for i in range(3)),
        speakers=np.concatenate([c.speaker[k] for c, k in both]),
        corpora=[c.name for c, k in both for _ in range(int(k.sum()))])
    out = []
    for c in (src, tgt):
        mean, std = norm.row_stats(None, speakers=c.speaker, corpora=[c.name] * len(c.df))
        out.append((c.pooled - mean.reshape(len(c.df), -1)) / std.reshape(len(c.df), -1))
    if spec["pca"]:
        sub = PrincipalSubspace(n_components=spec["pca"]).fit(
            np.r_[out[0][keep[0]], out[1][keep[1]]])
        out = [sub.transform(x).astype(np.float64) for x in out]
    return out[0], out[1], norm.last_report.summary()  # fallback of the target rows


def _keep(c: Corpus, stats_rows: str) -> np.ndarray:
    return c.task if stats_rows == "task" else np.ones(len(c.df), bool)


def fit_erasers(spec: dict, xs: np.ndarray, gs: np.ndarray, xt: np.ndarray, gt: np.ndarray):
    """Fit the condition's erasers on source + target rows; return ``apply(x, genders)``."""
    steps = []
    x, g = np.r_[xs, xt], np.r_[gs, gt]
    if spec["leace"]:
        leace = GenderEraser(strength=spec["leace"]).fit(x, sensitive_features=g)
        steps.append(lambda z, gz: leace.transform(z))
        x = leace.transform(x)
    if spec["qleace"]:
        quad = QuadraticGenderEraser(strength=spec["qleace"]).fit(x, sensitive_features=g)
        steps.append(lambda z, gz: quad.transform(z, groups=gz))

    def apply(z: np.ndarray, gz: np.ndarray) -> np.ndarray:
        for step in steps:
            z = step(z, gz)
        return np.asarray(z, dtype=np.float64)

    return apply


def evaluate(src: Corpus, tgt: Corpus, train: np.ndarray, cond: str, *, stats_rows: str,
             mlp: bool, seed: int) -> dict:
    """Every metric of one (target, condition, seed)."""
    spec = parse_condition(cond)
    xs, xt, fallback = normalised(src, tgt, spec, stats_rows=stats_rows)
    ks, kt = _keep(src, stats_rows), _keep(tgt, stats_rows)
    erase = fit_erasers(spec, xs[ks], src.gender[ks], xt[kt], tgt.gender[kt])
    xs0, xt0 = xs, xt  # before erasure, for the cross-fitted probes
    xs, xt = erase(xs, src.gender), erase(xt, tgt.gender)
    rows = train & src.task
    t = tgt.task
    g, y_t = tgt.gender[t], tgt.emotion[t]
    res: dict = {"fallback": fallback}

    def classifier() -> LogisticRegression:
        return LogisticRegression(C=spec["C"], max_iter=3000, class_weight="balanced")

    for emo in EMOTIONS:
        clf = classifier().fit(xs[rows], (src.emotion[rows] == emo).astype(int))
        p = clf.predict_proba(xt[t])[:, 1]
        y = (y_t == emo).astype(int)
        if spec["thr"]:
            pred = GroupThresholds(strength=spec["thr"]).fit(p, groups=g).predict(p, groups=g)
        else:
            pred = decide(p)
        res[emo] = {"uar": unweighted_average_recall(y, pred),
                    "dsp": demographic_parity_difference(y, pred, sensitive_features=g),
                    "deo": equalized_odds_difference(y, pred, sensitive_features=g, agg="max")}
    for m in ("uar", "dsp", "deo"):
        res[m] = float(np.mean([res[e][m] for e in EMOTIONS]))
    clf = classifier().fit(xs[rows], src.emotion[rows].astype(str))
    proba = clf.predict_proba(xt[t])
    if spec["thr"]:
        pred4 = GroupThresholds(strength=spec["thr"]).fit(proba, groups=g).predict(proba,
                                                                             groups=g)
    else:
        pred4 = decide(proba)
    labels4 = clf.classes_[pred4]
    res["uar4"] = unweighted_average_recall(y_t.astype(str), labels4)
    res["dsp4"] = demographic_parity_difference(y_t.astype(str), labels4, sensitive_features=g)
    key = (tgt.name, spec["norm"], spec["pca"], spec["leace"], spec["qleace"], stats_rows, seed,
           mlp)
    if key not in _PROBES:  # probes read the features only: +thr and +c share them
        _PROBES[key] = probes(src, tgt, spec, xs0[ks], xt0, xt, stats_rows=stats_rows,
                              mlp=mlp, seed=seed)
    return {**res, **_PROBES[key]}


def probes(src: Corpus, tgt: Corpus, spec: dict, xs0: np.ndarray, xt0: np.ndarray,
           xt: np.ndarray, *, stats_rows: str, mlp: bool, seed: int) -> dict:
    """Gender probes on the scored target rows (and, label-free protocol, on all of them).

    With an eraser the probes are CROSS-FITTED: each fold refits the erasers on the source
    rows plus the fold's training speakers only (probing rows an eraser was fitted on
    inverts held-out speakers' gender and scores far below 0.5: an artefact).
    """
    t = tgt.task
    gs = src.gender[_keep(src, stats_rows)]
    out = {}
    for name, rows in (("", t), ("_all", np.ones(len(t), bool))):
        if name and stats_rows != "all":
            continue  # with task-row statistics the other rows are not normalised as scored
        g, spk = tgt.gender[rows], tgt.speaker[rows]
        kw: dict = {"sensitive_features": g, "groups": spk, "seed": seed}
        x = xt[rows]
        if spec["leace"] or spec["qleace"]:
            x = xt0[rows]

            def per_fold(train, x=x, g=g):
                apply = fit_erasers(spec, xs0, gs, x[train], g[train])
                return lambda z: apply(z, g)

            kw["fold_transform"] = per_fold
        out[f"probe_lr{name}"] = gender_probe(x, **kw)
        if mlp and not name:
            out["probe_mlp"] = mlp_gender_probe(x, **kw)
    return out


_PROBES: dict[tuple, dict[str, float]] = {}


def print_tables(results: list[dict]) -> None:
    """Markdown tables: mean +- std over seeds per target and condition, then per task."""
    df = pd.DataFrame(results)
    cols = ["uar", "dsp", "deo", "uar4", "dsp4", "probe_lr", "probe_mlp", "probe_lr_all"]
    for target, part in df.groupby("target", sort=False):
        print(f"\n### RAVDESS -> {target} (mean +- std over seeds {sorted(set(part.seed))})\n")
        print("| condition | " + " | ".join(cols) + " | goals |")
        print("|---" * (len(cols) + 2) + "|")
        for cond, rows in part.groupby("condition", sort=False):
            cells, fails = [], []
            for c in cols:
                v = rows[c].dropna() if c in rows else pd.Series(dtype=float)
                if v.empty:
                    cells.append("-")
                elif len(v) == 1:  # e.g. the MLP probe, run for the first seed only
                    cells.append(f"{v.iloc[0]:.3f} (1 seed)")
                else:
                    cells.append(f"{v.mean():.3f} +- {v.std(ddof=0):.3f}")
            for metric, kind, bound in GOALS.get(str(target), []):
                v = rows[metric].dropna().mean() if metric in rows else float("nan")
                if not (v >= bound if kind == "min" else v <= bound):
                    fails.append(metric)
            goal = "-" if str(target) not in GOALS else ("met" if not fails else
                                                         "missed: " + ", ".join(fails))
            print(f"| {cond} | " + " | ".join(cells) + f" | {goal} |")
        print("\nper task (UAR / dSP / dEO max, mean over seeds):\n")
        print("| condition | " + " | ".join(EMOTIONS) + " |")
        print("|---" * (len(EMOTIONS) + 1) + "|")
        for cond, rows in part.groupby("condition", sort=False):
            cells = [" / ".join(f"{np.mean([r[e][m] for r in rows.to_dict('records')]):.3f}"
                                for m in ("uar", "dsp", "deo")) for e in EMOTIONS]
            print(f"| {cond} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--targets", nargs="+", default=["ased", "casia", "emodb"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--conditions", nargs="+", default=CONDITIONS)
    ap.add_argument("--stats-rows", choices=["all", "task"], default="all")
    ap.add_argument("--source-rows", choices=["train", "all"], default="train",
                    help="RAVDESS rows the classifier trains on (train split of each seed, or "
                    "all 24 actors: then seeds only change probe folds)")
    ap.add_argument("--no-mlp", action="store_true")
    ap.add_argument("--mlp-all-seeds", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="write every result here")
    ap.add_argument("--show", type=Path, default=None,
                    help="only print the tables of a JSON written by --json")
    args = ap.parse_args()
    if args.show:
        print_tables(json.loads(args.show.read_text())["results"])
        return
    args.conditions = [RECIPE if c == "recipe" else c for c in args.conditions]
    t0 = time.time()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    src_df = manifest("ravdess", args.data)
    src = Corpus(src_df, corpus_moments(src_df, [2]))
    targets = {n: Corpus(d, corpus_moments(d, [2]))
               for n in args.targets for d in [manifest(n, args.data)]}
    results = []
    with threadpool_limits(limits=1):
        for seed in args.seeds:
            split = manifest("ravdess", args.data, seed=seed)["split"].astype("string")
            train = (split == "train").fillna(False).to_numpy()
            if args.source_rows == "all":
                train = np.ones(len(src.df), bool)
            for name, tgt in targets.items():
                for cond in args.conditions:
                    mlp = not args.no_mlp and (args.mlp_all_seeds or seed == args.seeds[0])
                    r = evaluate(src, tgt, train, cond, stats_rows=args.stats_rows, mlp=mlp,
                                 seed=seed)
                    results.append({"target": name, "condition": cond, "seed": seed, **r})
                    print(f"  seed {seed} {name:6s} {cond:24s} UAR {r['uar']:.3f} dSP "
                          f"{r['dsp']:.3f} dEO {r['deo']:.3f} UAR4 {r['uar4']:.3f} probe "
                          f"{r.get('probe_lr', float('nan')):.3f}/"
                          f"{r.get('probe_mlp', float('nan')):.3f} ({time.time() - t0:.0f} s)",
                          flush=True)
    print_tables(results)
    print(f"goals: {GOALS}; load average {os.getloadavg()[0]:.1f}; {time.time() - t0:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
