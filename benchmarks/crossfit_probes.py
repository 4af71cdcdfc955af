"""Old (in-sample) vs cross-fitted gender probes of saved models with an embedding eraser.

For every saved model of a finished grid run (``save_models: true``) whose model has an
embedding eraser, on its target's evaluation rows (logistic ``probe`` and MLP ``probe_mlp``,
the grid's rows, folds and seed 0):

- ``raw``: the plain probe on the embeddings BEFORE the eraser;
- ``old``: the plain probe on the erased embeddings, as results.csv reported it before (the
  eraser was fitted on these rows: in-sample);
- ``old_bal``: the same with the genders weighted equally (separates the majority-gender
  artefact of an emptied probe from the eraser's in-sample artefact);
- ``fold``: the eraser refitted per fold on its fitting rows minus the held-out speakers, the
  probe trained on the fold's training speakers (which the refit saw), genders weighted
  equally (for LEACE the logistic figure is 0.5 by construction);
- ``grid``: what results.csv reports now (``probe_protocol: cross-fitted``): as ``fold``, but
  the probe trains on half the fold's training speakers and the refit leaves that half out
  too (then the halves swap): the eraser saw neither the probe's training nor its test
  speakers;
- ``replay``: max |refit on all fitting rows - the model's own erased embedding| (0: the refit
  recipe is the training code's).

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
from fairser.training import FittedModel


def _variant(backend, cfg, erased, df, *, mlp: bool, disjoint: bool) -> float:
    idx = probe_rows(len(df), cfg.probe.mlp_max_rows if mlp else cfg.probe.max_rows)
    sex = df["gender"].astype(str).to_numpy(dtype=object)[idx]
    spk = df["speaker"].to_numpy(dtype=object)[idx]
    per_fold = refit_per_fold(erased.fit, groups=erased.groups[idx], labels=erased.labels[idx],
                              pool_x=erased.pool_x, pool_labels=erased.pool_labels,
                              pool_groups=erased.pool_groups, disjoint=disjoint)
    run = backend.mlp_probe if mlp else backend.gender_probe
    return float(run(erased.raw[idx], sensitive_features=sex, groups=spk,
                     fold_transform=per_fold, balanced=True))


def _plain_balanced(backend, cfg, emb, df, *, mlp: bool) -> float:
    idx = probe_rows(len(df), cfg.probe.mlp_max_rows if mlp else cfg.probe.max_rows)
    run = backend.mlp_probe if mlp else backend.gender_probe
    return float(run(emb[idx], sensitive_features=df["gender"].astype(str).to_numpy()[idx],
                     groups=df["speaker"].to_numpy(dtype=object)[idx], balanced=True))


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
                row[f"{name}_old_bal"] = _plain_balanced(backend, cfg, emb, df, mlp=mlp)
                row[f"{name}_fold"] = _variant(backend, cfg, erased, df, mlp=mlp,
                                               disjoint=False)
                row[f"{name}_grid"] = probe(backend, cfg, emb, df, mlp=mlp, erased=erased)
            row["seconds"] = round(time.perf_counter() - start, 1)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
