"""Finished fits whose gender probes were measured with an older protocol: rescored on resume.

The gender-probe protocol is not part of a fit's id (changing it would re-run every fit of
every run folder), so a record can outlive the protocol it was scored with: records written
before :data:`~fairser.experiments.scoring.PROBE_VERSION` 2 probed the embeddings of
embedding-eraser models in-sample (below chance: an artefact), the later ones cross-fit them.
A resumed grid must not serve such a record as-is, or one ``results.csv`` mixes protocols.

:func:`stale_tasks` picks the finished fits whose record is older than the protocol AND whose
probes the newer protocol changes (:func:`needs_reprobe`: a model with an embedding eraser,
probes on); they run again as tasks flagged ``reprobe``. :func:`rescore_probes` then reloads
the stored model, recomputes ``probe``, ``probe_mlp``, ``probe_protocol`` and the probe notes
of each evaluated corpus with the fit's own code (:func:`fairser.experiments.scoring.
probe_figures`), keeps every other column, and rewrites the record atomically with
``probe_version`` and ``probe_rescored``. Without a stored model (``save_models: false``, or a
folder that does not load) the fit is trained again. Fit ids never change; records of fits the
protocol does not affect (no eraser) are reused as they are, whatever their version.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

from fairser.errors import FairserError
from fairser.experiments.backend import Backend
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.crossfit import erases_embedding
from fairser.experiments.inputs import GridData, evaluated_rows, source_train
from fairser.experiments.planning import FitSpec, FitTask, training_options
from fairser.experiments.scoring import (
    PROBE_VERSION,
    model_outputs,
    probe_figures,
    probe_notes,
)
from fairser.experiments.store import ResultsStore

__all__ = ["RESCORE_COST", "needs_reprobe", "record_probe_version", "rescore_probes",
           "stale_tasks"]

#: ``FitTask.cost`` of a rescoring (loading a model and probing it; a fit costs 1 or 2).
RESCORE_COST = 0.1

#: The notes of the probe columns (a rescoring rewrites them with ``probe``, ``probe_mlp`` and
#: ``probe_protocol``).
_NOTE_KEYS = ("probe_note", "probe_mlp_note")


def record_probe_version(record: dict[str, Any]) -> int:
    """The probe protocol version a record was scored with.

    Its ``probe_version``; else 2 when its rows carry a ``probe_protocol`` (written by the
    first cross-fitting code, before the key existed), else 1 (in-sample probes).
    """
    version = record.get("probe_version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    rows = record.get("rows") or []
    return 2 if any(isinstance(r, dict) and r.get("probe_protocol") for r in rows) else 1


def needs_reprobe(cfg: ExperimentConfig, config: Any, record: dict[str, Any]) -> bool:
    """True when ``record`` holds probe figures the current protocol computes differently.

    ``config``: the fit's training config (``Backend.train_config``). Versions 1 -> 2 change
    the probes of models with an embedding eraser only, and only when probes are on.
    """
    if record.get("status") == "failed" or record_probe_version(record) >= PROBE_VERSION:
        return False
    return bool(cfg.probe.enabled) and erases_embedding(config)


def stale_tasks(cfg: ExperimentConfig, backend: Backend, store: ResultsStore,
                tasks: Sequence[FitTask]) -> list[FitTask]:
    """The finished ``tasks`` whose records need their probes rescored, flagged ``reprobe``."""
    configs: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    out = []
    for task in tasks:
        spec = task.spec
        if spec.is_baseline or not store.finished(task.fit_id):
            continue
        key = (spec.method, spec.sweep)
        if key not in configs:
            configs[key] = backend.train_config(training_options(cfg, spec.sweep, spec.method))
        if needs_reprobe(cfg, configs[key], store.load(task.fit_id)):
            out.append(dataclasses.replace(task, reprobe=True, cost=RESCORE_COST))
    return out


def _load_model(backend: Backend, store: ResultsStore, fit_id: str) -> Any:
    folder = store.model_dir(fit_id)
    if not (folder / "run.json").is_file():  # written last: a complete model folder
        return None
    try:
        return backend.load_model(folder / "model")
    except (FairserError, OSError, ValueError, KeyError, RuntimeError):
        return None


def rescore_probes(cfg: ExperimentConfig, backend: Backend, data: GridData, task: FitTask,
                   store: ResultsStore) -> dict[str, Any] | None:
    """Rescore the probes of ``task``'s record from its stored model; the new record.

    Returns None (the caller trains the fit again) when the model is not stored or does not
    load, or when the record's rows do not match the fit's evaluated corpora.
    """
    spec: FitSpec = task.spec
    record = store.load(task.fit_id)
    model = _load_model(backend, store, task.fit_id)
    if model is None:
        return None
    rows = [dict(r) for r in record.get("rows") or []]
    where = {(str(r.get("corpus")), str(r.get("role"))): r for r in rows}
    evaluated = evaluated_rows(cfg, data, spec)
    if len(where) != len(rows) or set(where) != {(c, role) for c, role, _ in evaluated}:
        return None
    source = source_train(data, cfg, spec)
    old = sorted({str(r.get("probe_protocol") or "in-sample") for r in rows})
    for corpus, role, df in evaluated:
        with warnings.catch_warnings():  # the levers' fallbacks are in the record already
            warnings.simplefilter("ignore", UserWarning)
            _, _, emb, _ = model_outputs(model, df, data.features,
                                         where=f"{task.fit_id} on {corpus}")
        probe, probe_mlp, protocol = probe_figures(
            backend, cfg, model, df, data.features, emb, source=source,
            target=data.adapt[spec.target])
        row, notes = where[(corpus, role)], probe_notes(df, protocol)
        for key in _NOTE_KEYS:
            if key not in notes:
                row.pop(key, None)
        # in place: the columns keep their order in results.csv
        row.update(probe=probe, probe_mlp=probe_mlp, probe_protocol=protocol, **notes)
    new = {**record, "rows": rows, "probe_version": PROBE_VERSION,
           "probe_rescored": f"{', '.join(old)} -> {rows[0]['probe_protocol'] if rows else ''}"}
    store.save(task.fit_id, new)
    return new
