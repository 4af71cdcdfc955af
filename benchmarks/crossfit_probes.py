"""Old (in-sample) vs cross-fitted gender probes of saved models with an embedding eraser.

For every saved model of a finished grid run (``save_models: true``) whose model has an
embedding eraser, on its target's evaluation rows:

- ``raw``: the probe on the embeddings BEFORE the eraser (what the eraser starts from);
- ``old``: the probe on the erased embeddings, as results.csv reported it before
  (the eraser was fitted on these rows: an in-sample artefact, often far below 0.5);
- ``cross``: the grid's probe now: the eraser refitted per probe fold on its fitting rows
  minus the held-out speakers, genders weighted equally (``probe_protocol: cross-fitted``);
- ``cross_unw``: the same without the gender weighting (for transparency: an emptied probe
  predicts each training fold's majority gender, below chance);
- ``strict``: a stricter diagnostic, not in the grid: in each speaker-disjoint fold the
  training speakers are split into two gender-balanced halves; the eraser is refitted on its
  fitting rows minus the held-out speakers AND one half, the probe is trained on the other
  half and scores the held-out speakers (then the halves swap). The eraser has seen neither
  the probe's training nor its test speakers. (``cross`` trains the probe on rows the fold's
  eraser was fitted on, so its LOGISTIC figure is 0.5 by construction.)
- ``replay``: max |refit on all fitting rows - the model's own erased embedding| (0 means the
  refit recipe is the training code's).

Logistic (``probe``) and MLP (``probe_mlp``) probes, the grid's rows and seeds.

Run: ``OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/crossfit_probes.py RUN...``
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from fairser.experiments.backend import default_backend
from fairser.experiments.config import parse_config
from fairser.experiments.crossfit import erased_probe_inputs
from fairser.experiments.inputs import load_grid_data, source_train
from fairser.experiments.planning import plan_fits
from fairser.experiments.scoring import probe, probe_rows
from fairser.metrics.crossfit import refit_per_fold
from fairser.metrics.probe import MLP_PROBE_DEFAULTS
from fairser.training import FittedModel


def _unweighted(backend, cfg, erased, df, *, mlp: bool) -> float:
    idx = probe_rows(len(df), cfg.probe.mlp_max_rows if mlp else cfg.probe.max_rows)
    sex = df["gender"].astype(str).to_numpy(dtype=object)[idx]
    spk = df["speaker"].to_numpy(dtype=object)[idx]
    per_fold = refit_per_fold(erased.fit, groups=erased.groups[idx], labels=erased.labels[idx],
                              pool_x=erased.pool_x, pool_labels=erased.pool_labels,
                              pool_groups=erased.pool_groups)
    run = backend.mlp_probe if mlp else backend.gender_probe
    return float(run(erased.raw[idx], sensitive_features=sex, groups=spk,
                     fold_transform=per_fold))


def _strict(cfg, erased, df, *, mlp: bool, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    idx = probe_rows(len(df), cfg.probe.mlp_max_rows if mlp else cfg.probe.max_rows)
    y = df["gender"].astype(str).to_numpy(dtype=object)[idx].astype(str)
    spk = df["speaker"].astype(str).to_numpy(dtype=object)[idx]
    grp, lab, x = erased.groups[idx], erased.labels[idx], erased.raw[idx]
    folds = GroupKFold(n_splits=min(5, len(set(spk))), shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    truth, preds = [], []
    for train, test in folds.split(x, y, groups=spk):
        halves: list[list[str]] = [[], []]
        for g in sorted(set(y[train])):
            names = sorted(set(spk[train][y[train] == g]))
            for i, name in enumerate(rng.permutation(names)):
                halves[i % 2].append(name)
        for probe_half in (1, 0):  # the other half fits the eraser
            rows = train[np.isin(spk[train], halves[probe_half])]
            if len(set(y[rows])) < 2:
                continue
            held = set(grp[test]) | set(grp[rows])
            keep = ~np.isin(erased.pool_groups, list(held))
            z = np.asarray(erased.fit(erased.pool_x[keep], erased.pool_labels[keep])(x, lab))
            if mlp:
                opts = {**MLP_PROBE_DEFAULTS, "batch_size": min(64, len(rows))}
                clf = MLPClassifier(random_state=seed, **opts)
            else:
                clf = LogisticRegression(max_iter=2000, random_state=seed)
            model = make_pipeline(StandardScaler(), clf)
            _, inv, counts = np.unique(y[rows], return_inverse=True, return_counts=True)
            weight = (len(rows) / (len(counts) * counts))[inv]
            model.fit(z[rows], y[rows], **{f"{model.steps[-1][0]}__sample_weight": weight})
            truth.append(y[test])
            preds.append(model.predict(z[test]))
    return float(balanced_accuracy_score(np.concatenate(truth), np.concatenate(preds)))


def main(runs: list[str]) -> None:
    console = Console(stderr=True)
    backend = default_backend()
    for run in map(Path, runs):
        cfg = parse_config(json.loads((run / "config.json").read_text()))
        cfg = cfg.model_copy(update={"probe": cfg.probe.model_copy(update={"mlp": True})})
        data = load_grid_data(cfg, backend, progress=False, console=console)
        specs = plan_fits(cfg, baselines=False)
        for folder in sorted((run / "models").iterdir()):
            info = json.loads((folder / "run.json").read_text())
            model = FittedModel.load(folder / "model")
            spec = next(s for s in specs if s.method == info["method"]
                        and s.seed == info["seed"] and s.emotion == info["emotion"]
                        and s.target == info["target"] and s.condition == info["condition"])
            source = source_train(data, cfg, spec)
            target = info["target"]
            df = data.evals[target]
            start = time.perf_counter()
            emb = model.outputs(df, data.features, warn=False).embedding
            erased = erased_probe_inputs(model, df, data.features, source=source,
                                         target=data.adapt[target])
            row = {"run": run.name, "method": info["method"], "emotion": info["emotion"],
                   "seed": info["seed"], "target": target, "n": len(df)}
            if erased is None:
                console.print(f"{folder.name}: no embedding eraser (or unseen rows); skipped")
                continue
            replay = erased.fit(erased.pool_x, erased.pool_labels)(erased.raw, erased.labels)
            row["replay"] = float(np.abs(replay - emb).max())
            for mlp, name in ((False, "probe"), (True, "probe_mlp")):
                row[f"{name}_raw"] = probe(backend, cfg, erased.raw, df, mlp=mlp)
                row[f"{name}_old"] = probe(backend, cfg, emb, df, mlp=mlp)
                row[f"{name}_cross"] = probe(backend, cfg, emb, df, mlp=mlp, erased=erased)
                row[f"{name}_cross_unw"] = _unweighted(backend, cfg, erased, df, mlp=mlp)
                row[f"{name}_strict"] = _strict(cfg, erased, df, mlp=mlp)
            row["seconds"] = round(time.perf_counter() - start, 1)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
