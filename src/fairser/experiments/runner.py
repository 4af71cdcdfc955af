"""The grid runner: corpora -> features -> every fit -> evaluate -> store -> report.

:func:`run_experiment` is what ``fairser run EXPERIMENT.yaml`` calls. It

1. checks the config against the lower layers (:func:`~fairser.experiments.planning.check_config`);
2. loads the corpora, splits them and extracts or reuses the features once
   (:mod:`fairser.experiments.inputs`), and probes the input features for gender once per
   corpus;
3. runs every fit of the plan that has no record yet (:mod:`fairser.experiments.fitting`;
   the linear baseline of :mod:`fairser.experiments.baseline` included; with ``processes:N``, a
   warning first when N fits at once would not fit in memory:
   :mod:`fairser.experiments.memory_guard`), each writing its record atomically, and rescores
   the gender probes of finished fits scored with an older probe protocol
   (:mod:`fairser.experiments.reprobe`);
4. gathers the records of the current grid into ``results.parquet`` / ``results.csv``,
   ``per_speaker.csv``, ``predictions.parquet``, ``comparisons.csv`` (paired speaker-bootstrap
   tests of every method against source-only, seeds averaged), ``gap_null.csv`` (each method's
   gender gaps against speaker reassignments and a group-blind classifier, seeds averaged),
   ``table.md``, ``report.html`` and ``meta.json`` (:mod:`fairser.experiments.provenance`).

A fit is identified by its grid coordinates plus the hash of every option that changes its
result, so a rerun of the same command skips finished fits, and editing an option re-runs
exactly the fits it affects.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fairser._io import atomic_write_text
from fairser.errors import FairserError
from fairser.experiments.backend import Backend, default_backend
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.executors import Executor, parse_executor
from fairser.experiments.fitting import FitOutcome, GridContext, run_fit
from fairser.experiments.inputs import input_probes, load_grid_data
from fairser.experiments.memory_guard import memory_warning
from fairser.experiments.planning import FitSpec, FitTask, check_config, plan_tasks
from fairser.experiments.provenance import build_meta
from fairser.experiments.reprobe import stale_tasks
from fairser.experiments.store import ResultsStore, RunLock, atomic_write_frame, safe_name

__all__ = ["RESULT_COLUMNS", "ExperimentResult", "run_experiment"]

#: Leading columns of results.csv (CI and sweep columns follow).
RESULT_COLUMNS: tuple[str, ...] = (
    "method", "emotion", "seed", "corpus", "role", "target", "condition", "sweep",
    "uar", "uar_m", "uar_f", "dsp", "deo_max", "deo_sum", "gc_acc", "probe", "probe_mlp",
    "probe_input",
    "n", "n_m", "n_f", "config_hash", "run_id", "fit_s", "status", "reason",
)


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    results : DataFrame
        One row per fit x evaluated corpus (also in results.parquet / results.csv).
    per_speaker : DataFrame
        Per-speaker figures of every evaluation.
    n_runs, n_skipped : int
        Fits in the plan, and those found finished and skipped.
    n_rescored : int
        Finished fits whose gender probes were rescored from their stored models (neither
        trained nor skipped); ``n_runs - n_skipped - n_rescored`` fits were trained.
    wall_s : float
        Seconds this call took.
    report : Path or None
        report.html, when written.
    table : Path or None
        table.md, when written.
    notes : list of str
        What was dropped from the data.
    failed : list of (str, str)
        ``(fit key, reason)`` of every fit of the grid that failed on its own (its rows in
        ``results`` have ``status`` ``failed``; a rerun tries it again).
    """

    out_dir: Path
    results: pd.DataFrame
    per_speaker: pd.DataFrame
    n_runs: int
    n_skipped: int
    wall_s: float
    report: Path | None = None
    table: Path | None = None
    notes: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    n_rescored: int = 0


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """:data:`RESULT_COLUMNS` first (NaN where every fit failed), then the others."""
    if df.empty:
        return df
    for col in RESULT_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    return df[list(RESULT_COLUMNS) + [c for c in df.columns if c not in RESULT_COLUMNS]]


def run_experiment(cfg: ExperimentConfig, *, out_dir: Path | str | None = None,
                   progress: bool = True, console: Console | None = None,
                   backend: Backend | None = None, command: str | None = None,
                   on_run: Callable[[FitSpec, bool], None] | None = None,
                   executor: str | Executor | None = None) -> ExperimentResult:
    """Run (or resume) the whole grid of ``cfg`` and write the run folder.

    Parameters
    ----------
    cfg : ExperimentConfig
        The validated experiment (:func:`fairser.experiments.load_config`).
    out_dir : path, optional
        Run folder; default ``runs/<cfg.name>`` in the current directory.
    progress : bool, default=True
        Show rich progress bars (extraction and the grid).
    console : rich Console, optional
        Where logs go (default: stderr).
    backend : Backend, optional
        The lower layers; default the real ones (:func:`default_backend`).
    command : str, optional
        The command line recorded in meta.json and the report.
    on_run : callable, optional
        Called as ``on_run(spec, skipped)`` after each fit (for tests and callers).
    executor : str or Executor, optional
        Where the fits run: ``local`` (default), ``processes:N``, ``ray``, ``ray:N`` or
        ``ray:ADDRESS`` (:func:`fairser.experiments.executors.parse_executor`). The results do
        not depend on it.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ConfigError, CorpusError, FeatureError, TrainingError
        Anything the user can fix; finished fits stay stored, and a rerun resumes. A fit that
        fails on its own does not raise: it is listed in ``ExperimentResult.failed``.
    ResultFolderBusy
        Another run is writing to ``out_dir`` (its lock, ``.lock``, is held).
    """
    started = time.perf_counter()
    console = console or Console(stderr=True)
    backend = backend or default_backend()
    runner = parse_executor(executor)
    check_config(cfg, backend)
    out = Path(out_dir) if out_dir is not None else Path("runs") / safe_name(cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()  # workers on other nodes see the same absolute path
    command = command or " ".join(sys.argv)
    with RunLock(out, command=command):
        return _run_locked(cfg, out=out, backend=backend, runner=runner, console=console,
                           progress=progress, command=command, on_run=on_run, started=started)


def _run_locked(cfg: ExperimentConfig, *, out: Path, backend: Backend, runner: Executor,
                console: Console, progress: bool, command: str,
                on_run: Callable[[FitSpec, bool], None] | None, started: float
                ) -> ExperimentResult:
    store = ResultsStore(out)
    atomic_write_text(out / "config.json", json.dumps(cfg.model_dump(mode="json"), indent=1))
    tasks = plan_tasks(cfg)
    try:
        # worker processes start (and import torch) while the data loads
        runner.warm(sum(not store.finished(t.fit_id) for t in tasks))
        # finished fits scored with an older gender-probe protocol: rescored, never mixed in
        stale = {t.fit_id: t for t in stale_tasks(cfg, backend, store, tasks)}
        if stale:
            console.log(f"{len(stale)} finished fit(s) have gender probes of an older protocol: "
                        "rescoring them from their stored models (refitting those without one)")
        todo = [stale.get(t.fit_id, t) for t in tasks
                if t.fit_id in stale or not store.finished(t.fit_id)]
        n_skipped = len(tasks) - len(todo)
        data = load_grid_data(cfg, backend, progress=progress, console=console)
        if (warning := memory_warning(cfg, backend, data, todo, executor=runner)) is not None:
            console.log(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
        probe_input = input_probes(cfg, backend, data, store, console)
        # the fits never write reports or compare methods: workers need not import those
        fit_backend = dataclasses.replace(backend, write_report=None, table_markdown=None,
                                          compare_methods=None, gap_nulls=None)
        ctx = GridContext(cfg=cfg, backend=fit_backend, data=data, probe_input=probe_input,
                          root=out)
        rescored = _run_fits(runner, ctx, tasks, todo, n_skipped, console=console,
                             progress=progress, on_run=on_run)
    finally:
        runner.close()  # a pool started by warm() that run() never took
    fit_ids = [t.fit_id for t in tasks]
    results = _order_columns(_with_status(_numeric(store.rows(fit_ids))))
    per_speaker = _numeric(store.rows(fit_ids, field="per_speaker"))
    atomic_write_frame(results, out / "results.parquet")
    atomic_write_frame(results, out / "results.csv")
    atomic_write_frame(per_speaker, out / "per_speaker.csv")
    predictions = store.predictions(fit_ids)
    if not predictions.empty:
        atomic_write_frame(predictions, out / "predictions.parquet")
    comparisons = _compare(cfg, backend, predictions, console, progress=progress)
    if comparisons is not None:
        atomic_write_frame(comparisons, out / "comparisons.csv")
    gap_nulls = _gap_nulls(cfg, backend, predictions, console)
    if gap_nulls is not None:
        atomic_write_frame(gap_nulls, out / "gap_null.csv")
    failed = [(t.spec.key, str(store.load(t.fit_id).get("reason", ""))) for t in tasks
              if store.status(t.fit_id) == "failed"]
    wall = time.perf_counter() - started
    compute = float(sum(store.load(r).get("fit_s", 0.0) or 0.0 for r in fit_ids))
    meta = build_meta(out / "meta.json", trained=len(todo) - len(rescored), skipped=n_skipped,
                      fields={
        "name": cfg.name, "command": command, "wall_s": round(wall, 1),
        "fit_s_total": round(compute, 1), "runs": len(tasks), "skipped": n_skipped,
        "failed": len(failed), "seeds": cfg.seeds, "frontend": cfg.features.frontend,
        "layers": cfg.features.layers, "target_split": cfg.target_split.mode,
        "notes": data.notes, "executor": runner.label, "devices": _devices(store, fit_ids),
        **({"probes_rescored": len(rescored)} if stale else {}),
        **({"variants": variants} if (variants := _variants(cfg)) else {})})
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1, default=str))
    result = ExperimentResult(out_dir=out, results=results, per_speaker=per_speaker,
                              n_runs=len(tasks), n_skipped=n_skipped, wall_s=wall,
                              notes=list(data.notes), failed=failed,
                              n_rescored=len(rescored))
    if cfg.report and not results.empty:  # the report lists failed fits, leaves them out of means
        result.table, result.report = _write_outputs(cfg, backend, store, fit_ids, results,
                                                     meta, out, comparisons, gap_nulls)
    return result


def _run_fits(runner: Executor, ctx: GridContext, tasks: list[FitTask], todo: list[FitTask],
              n_skipped: int, *, console: Console, progress: bool,
              on_run: Callable[[FitSpec, bool], None] | None) -> list[str]:
    """Run the fits of ``todo`` on ``runner`` with a progress bar; the ids of rescored fits."""
    todo_ids = {t.fit_id for t in todo}
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    rescored: list[str] = []
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        grid = bar.add_task(f"grid ({runner.label})", total=len(tasks), completed=n_skipped)
        if on_run:
            for task in tasks:
                if task.fit_id not in todo_ids:
                    on_run(task.spec, True)

        def done(task: FitTask, outcome: FitOutcome) -> None:
            bar.advance(grid)
            if outcome.rescored:
                rescored.append(task.fit_id)
            if outcome.status != "ok":
                console.print(f"[red]fit {task.index + 1}/{len(tasks)} {escape(outcome.key)} "
                              f"failed[/]: {escape(outcome.reason)}", highlight=False)
            elif not progress:
                console.log(f"run {task.index + 1}/{len(tasks)} {outcome.key}: target UAR "
                            f"{outcome.target_uar:.3f}, fit {outcome.fit_s:.1f} s")
            if on_run:
                on_run(task.spec, False)

        runner.run(run_fit, ctx, todo, done)
        bar.update(grid, description="grid done")
    return rescored


def _devices(store: ResultsStore, fit_ids: list[str]) -> dict[str, int]:
    """How many of the grid's trained fits ran on each device and precision (from their
    records' ``runtime``), e.g. ``{"cuda:0 (NVIDIA H200) bf16": 140, "cpu fp32": 4}``."""
    counts: dict[str, int] = {}
    for fid in fit_ids:
        if not store.finished(fid):
            continue
        info = store.load(fid).get("runtime") or {}
        if "device" not in info:
            continue
        name = f" ({info['device_name']})" if info.get("device_name") else ""
        key = f"{info['device']}{name} {info.get('precision', '')}".strip()
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _with_status(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of records written before fits had a status are ``ok``."""
    if df.empty:
        return df
    df["status"] = df["status"].fillna("ok") if "status" in df.columns else "ok"
    df["reason"] = df["reason"].fillna("") if "reason" in df.columns else ""
    return df


def _compare(cfg: ExperimentConfig, backend: Backend, predictions: pd.DataFrame,
             console: Console, *, progress: bool) -> pd.DataFrame | None:
    """Paired speaker-bootstrap tests of every method against source-only (when present)."""
    if (backend.compare_methods is None or predictions.empty or cfg.bootstrap.n_resamples == 0
            or "source-only" not in set(predictions["method"])):
        return None
    console.log("paired bootstrap tests against source-only")
    extra = {} if cfg.task == "binary" else {"labels": list(range(len(cfg.emotions)))}
    return backend.compare_methods(
        predictions, baseline="source-only", n_boot=cfg.bootstrap.n_resamples,
        confidence=cfg.bootstrap.confidence, seed=cfg.bootstrap.seed, progress=progress,
        **extra)


def _gap_nulls(cfg: ExperimentConfig, backend: Backend, predictions: pd.DataFrame,
               console: Console) -> pd.DataFrame | None:
    """Every method's dSP and dEO against speaker reassignments and a group-blind classifier."""
    if backend.gap_nulls is None or predictions.empty or cfg.bootstrap.n_resamples == 0:
        return None
    console.log("gender gaps against speaker reassignments (gap_null.csv)")
    extra = {} if cfg.task == "binary" else {"labels": list(range(len(cfg.emotions)))}
    return backend.gap_nulls(predictions, n_resamples=cfg.bootstrap.n_resamples,
                             confidence=cfg.bootstrap.confidence, seed=cfg.bootstrap.seed,
                             **extra)


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    """JSON round trips turn NaN into None: restore float columns."""
    for col in df.columns:
        if df[col].dtype == object:
            values = df[col].dropna()
            if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in values):
                df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
            elif len(values) == 0:
                df[col] = df[col].astype(float)
    return df


def _variants(cfg: ExperimentConfig) -> dict[str, str]:
    """``name -> "method + option=value, ..."`` of every method variant (for meta.json)."""
    out = {}
    for name in cfg.method_names():
        variant = cfg.variant(name)
        if variant is not None:
            opts = ", ".join(f"{k}={v}" for k, v in variant.training.items())
            out[name] = variant.method + (f" + {opts}" if opts else "")
    return out


def _write_outputs(cfg: ExperimentConfig, backend: Backend, store: ResultsStore,
                   fit_ids: list[str], results: pd.DataFrame, meta: dict[str, Any],
                   out: Path, comparisons: pd.DataFrame | None,
                   gap_nulls: pd.DataFrame | None = None
                   ) -> tuple[Path | None, Path | None]:
    table_path = report_path = None
    if backend.table_markdown is not None:
        table_path = out / "table.md"
        atomic_write_text(table_path, backend.table_markdown(results))
    if backend.write_report is not None:
        embeddings = _embeddings(store, fit_ids)
        extra = {} if comparisons is None else {"comparisons": comparisons}
        if gap_nulls is not None:
            extra["gap_nulls"] = gap_nulls
        report_path = Path(backend.write_report(results, out, embeddings=embeddings,
                                                title=f"fairser: {cfg.name}", meta=meta,
                                                **extra))
    return table_path, report_path


def _embeddings(store: ResultsStore, fit_ids: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Stored embedding samples keyed by method (the first stored fit of each method)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for fid in fit_ids:
        path = store.embeddings_path(fid)
        if not path.is_file():
            continue
        method = fid.split("__", 1)[0]
        if method in out:
            continue
        try:
            with np.load(path, allow_pickle=False) as npz:
                out[method] = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise FairserError(f"{path}: unreadable embedding sample ({type(exc).__name__}); "
                               "delete it and rerun") from exc
    return out
