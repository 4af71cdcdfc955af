"""``fairser run --dry-run``: check everything the run will, and say what it will cost.

:func:`dry_run` makes every check the real run makes before training, in the same functions:
the config's values (pydantic ranges), the methods and the training options of every method
and sweep point (the training layer's own ``TrainConfig``), the corpus specs and roots, the
frontend and its layers, the output and cache paths, and the rows (emotions present, corpus
names distinct, the source split, every target's adaptation / evaluation split, every source
condition). Only feature extraction and training are left out. It then estimates the cost
(:mod:`fairser.experiments.estimate`): the number of fits, the feature store's size, the
peak memory of one network fit (streamed: flat in the rows) and, when the grid has linear
baselines, of one linear-baseline fit (in memory: grows with the source train rows), and, for
an executor that runs fits at once on this machine (``processes:N``, local Ray), the peak of
the largest fits it runs together against the memory available
(:mod:`fairser.experiments.memory_guard`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fairser.errors import ConfigError
from fairser.experiments.backend import Backend
from fairser.experiments.config import ExperimentConfig
from fairser.experiments.data import target_roles
from fairser.experiments.estimate import (
    BaselineMemory,
    FitMemory,
    FrontendShape,
    fit_estimates,
    human_bytes,
    store_bytes,
)
from fairser.experiments.executors import Executor, parse_executor
from fairser.experiments.inputs import check_rows, load_rows
from fairser.experiments.memory_guard import ConcurrentMemory, concurrent_memory
from fairser.experiments.planning import check_config, plan_fits, training_options

__all__ = ["DryRun", "dry_run", "estimate_cost"]


@dataclass
class DryRun:
    """What ``--dry-run`` found.

    Attributes
    ----------
    n_grid, n_fits : int
        Grid points, and fits including the linear baselines.
    corpora : list of (label, rows, hours)
        The rows each corpus contributes (emotions kept).
    shape : FrontendShape or None
        The frontend configuration (None when the backend cannot describe it).
    store : int or None
        Estimated feature-store bytes.
    memory : FitMemory or None
        Estimated peak memory of the largest network fit.
    baseline : BaselineMemory or None
        Estimated peak memory of the largest linear-baseline fit (None without baselines).
    concurrent : ConcurrentMemory or None
        The fits the executor runs at once and their peak, against the memory available
        (None for ``local``, a remote Ray cluster, or without estimates).
    notes : list of str
        Anything worth saying.
    """

    n_grid: int
    n_fits: int
    corpora: list[tuple[str, int, float]] = field(default_factory=list)
    shape: FrontendShape | None = None
    store: int | None = None
    memory: FitMemory | None = None
    baseline: BaselineMemory | None = None
    concurrent: ConcurrentMemory | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The human-readable summary, one fact a line."""
        out = [f"{self.n_fits} fits ({self.n_grid} runs + {self.n_fits - self.n_grid} linear "
               "baselines)"]
        out.append("data: " + ", ".join(f"{label} {rows} rows ({hours:.1f} h)"
                                        for label, rows, hours in self.corpora))
        if self.shape is not None and self.store is not None:
            s = self.shape
            rate = f"{s.frame_rate:g} frames/s" if s.frame_rate > 0 else "1 frame/clip"
            out.append(f"feature store ({s.name}: {rate} x {s.dim} dims x {s.n_layers} "
                       f"layer(s) x {s.dtype}): about {human_bytes(self.store)} (entries "
                       "already stored are not subtracted)")
        if self.memory is not None:
            m = self.memory
            workers = (f", DataLoader workers {human_bytes(m.workers)}" if m.workers else "")
            out.append(f"peak memory per fit: about {human_bytes(m.total)} per network fit (a "
                       f"training step {human_bytes(m.train)} or a prediction batch "
                       f"{human_bytes(m.evaluate)} at {m.frames} frames per clip, parameters and "
                       f"optimiser "
                       f"{human_bytes(m.params)}, torch {human_bytes(m.overhead)}{workers}) on "
                       "top of the Python/torch process; flat in the rows (streamed)")
        if self.baseline is not None:
            b = self.baseline
            out.append(f"peak memory per fit: about {human_bytes(b.total)} per linear-baseline "
                       f"fit (fitting {human_bytes(b.fit)}, scoring "
                       f"{human_bytes(b.evaluate)}: {b.rows} "
                       f"source train rows x {b.width} values mean-pooled in memory, grows "
                       "with the rows)")
        if self.concurrent is not None:
            out.append(self.concurrent.line())
        return out + self.notes


def estimate_cost(cfg: ExperimentConfig, *, source: pd.DataFrame,
                  targets: dict[str, pd.DataFrame], adapt: dict[str, pd.DataFrame],
                  shape: FrontendShape | None, options: Any, adversarial: bool = True,
                  baselines: bool = True, evals: dict[str, pd.DataFrame] | None = None
                  ) -> tuple[int | None, FitMemory | None, BaselineMemory | None]:
    """``(store bytes, largest network fit, largest linear-baseline fit)`` for these manifests.

    ``source`` carries its split, ``targets`` are the target manifests (all rows extracted),
    ``adapt`` their adaptation rows; ``options`` the training options (a ``TrainConfig`` or a
    mapping); ``baselines``: whether the grid fits linear baselines (else the third is None);
    ``evals`` the targets' evaluation rows (default: every target row not adapted on, an upper
    bound).
    """
    if shape is None:
        return None, None, None
    everything = pd.concat([source, *targets.values()], ignore_index=True)
    distinct = everything.drop_duplicates(subset=["corpus", "utt_id"])
    size = store_bytes(distinct["duration_s"].to_numpy(dtype=float), shape)
    n_classes = len(cfg.emotions) if cfg.task == "multiclass" else 1
    eval_rows = {label: (len(evals[label]) if evals is not None
                         else max(0, len(targets[label]) - len(rows)))
                 for label, rows in adapt.items()}
    worst, floor = fit_estimates(source=source, adapt=adapt, eval_rows=eval_rows, shape=shape,
                                 options=options, n_classes=n_classes,
                                 norm=cfg.linear_baseline_norm, adversarial=adversarial,
                                 baselines=baselines)
    return size, worst, floor


def _check_paths(cfg: ExperimentConfig, out_dir: Path | None) -> None:
    for where, path in (("features.cache_dir", cfg.features.cache_dir), ("--out", out_dir)):
        if path is not None and Path(path).exists() and not Path(path).is_dir():
            raise ConfigError(f"{where}: {path} is a file, not a folder; pass a folder path")


def _check_roots(cfg: ExperimentConfig) -> None:
    from fairser.corpora import parse_spec

    corpora = [("source", cfg.source)] + [(f"targets.{i}", t) for i, t in enumerate(cfg.targets)]
    for where, corpus in corpora:
        _, root = parse_spec(corpus.spec)  # unknown kind: CorpusError naming the spec
        synthetic = corpus.kind.strip().lower().startswith("synthetic")
        if root is not None and not synthetic and not root.exists():
            raise ConfigError(f"{where}: {corpus.spec}: corpus root not found; fix the path "
                              "(a relative path is read from the config's folder)")


def dry_run(cfg: ExperimentConfig, backend: Backend, *, out_dir: Path | str | None = None,
            check_roots: bool = True, executor: str | Executor | None = None) -> DryRun:
    """Check ``cfg`` as the run will, without extracting or training, and estimate its cost.

    Parameters
    ----------
    cfg : ExperimentConfig
        The validated experiment.
    backend : Backend
        The lower layers.
    out_dir : path, optional
        The run folder the run would write.
    check_roots : bool, default True
        Check corpus kinds and roots with :func:`fairser.corpora.parse_spec` (off for fake
        corpora in tests).
    executor : str or Executor, optional
        The executor the run would use (checked: its form, and that Ray is installed).

    Raises
    ------
    ConfigError, CorpusError
        The first problem the run would hit, in one line.
    """
    runner = parse_executor(executor)
    runner.check()
    check_config(cfg, backend)
    _check_paths(cfg, None if out_dir is None else Path(out_dir))
    if check_roots:
        _check_roots(cfg)
    shape = None
    if backend.describe_frontend is not None:  # unknown frontend or layer: ConfigError
        shape = backend.describe_frontend(cfg.features.frontend, cfg.features.layers)
    source, targets = load_rows(cfg, backend)
    adapt = check_rows(cfg, source, targets)
    grid, fits = plan_fits(cfg, baselines=False), plan_fits(cfg)
    options = backend.train_config(training_options(cfg, ()))
    evals = {label: target_roles(df, cfg.target_split)[1] for label, df in targets.items()}
    store, memory, baseline = estimate_cost(cfg, source=source, targets=targets, adapt=adapt,
                                            shape=shape, options=options,
                                            baselines=len(fits) > len(grid), evals=evals)
    corpora = [(cfg.source.label, len(source), float(source["duration_s"].sum()) / 3600)]
    corpora += [(label, len(df), float(df["duration_s"].sum()) / 3600)
                for label, df in targets.items()]
    concurrent = concurrent_memory(executor=runner, network=memory, baseline=baseline,
                                   n_network=len(grid), n_baselines=len(fits) - len(grid))
    return DryRun(n_grid=len(grid), n_fits=len(fits), corpora=corpora, shape=shape,
                  store=store, memory=memory, baseline=baseline, concurrent=concurrent)
