"""`fairser run`, `fairser demo`, `fairser predict`: parse, call fairser.experiments, print."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fairser.cli._console import make_console
from fairser.errors import ConfigError, FairserError


def _summary(console: Console, result) -> None:
    done = result.n_runs - result.n_skipped
    console.print(f"[bold green]done[/]: {result.n_runs} runs ({done} trained, "
                  f"{result.n_skipped} reused) in {result.wall_s:.0f} s")
    for note in result.notes:
        console.print(f"[yellow]note[/]: {note}")
    console.print(f"results: {result.out_dir / 'results.csv'}")
    if result.table is not None:
        console.print(f"table:   {result.table}")
    if result.report is not None:
        console.print(f"report:  {result.report}")


def _check_inputs(cfg) -> None:
    """What --dry-run checks beyond the config itself: corpus kinds and roots, the frontend."""
    from fairser.corpora import parse_spec
    from fairser.features import FRONTENDS, frontend_names

    corpora = [("source", cfg.source)] + [(f"targets.{i}", t) for i, t in enumerate(cfg.targets)]
    for where, corpus in corpora:
        _, root = parse_spec(corpus.spec)  # unknown kind: CorpusError naming the spec
        synthetic = corpus.kind.strip().lower().startswith("synthetic")
        if root is not None and not synthetic and not root.exists():
            raise ConfigError(f"{where}: {corpus.spec}: corpus root not found; fix the path "
                              "(a relative path is read from the config's folder)")
    frontend = cfg.features.frontend
    if frontend not in FRONTENDS and not frontend.startswith("hf:"):
        raise ConfigError(f"features.frontend: unknown frontend {frontend!r}; choose one of "
                          f"{', '.join(frontend_names())}")


def run(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/ and "
                                  "fairser.experiments.config for every option)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Run folder (default runs/<name>)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Validate the config and print the grid size only."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    executor: str = typer.Option(
        "local", "--executor", "-x",
        help="Where the fits run: local, processes:N (N worker processes, torch threads = "
        "cores / N), ray (a local Ray cluster), ray:N (one with N CPUs) or ray:ADDRESS (a "
        "running cluster; needs pip install 'fairser[ray]'). Results do not depend on it."),
) -> None:
    """Run (or resume) an experiment grid and write results, table.md and report.html."""
    from fairser.experiments import check_config, default_backend, load_config, plan_fits
    from fairser.experiments import run_experiment as _run

    console = make_console(stderr=True)
    cfg = load_config(config)
    if dry_run:
        try:
            check_config(cfg, default_backend())
            _check_inputs(cfg)
        except FairserError as exc:
            raise ConfigError(f"{config}: {exc}") from None
        grid, fits = plan_fits(cfg, baselines=False), plan_fits(cfg)
        console.print(f"{config}: valid; {len(grid)} runs "
                      f"({len(cfg.methods)} methods x {len(cfg.grid_emotions())} emotions x "
                      f"{len(cfg.seeds)} seeds x {len(cfg.targets)} targets x "
                      f"{len(cfg.source_subsample)} conditions, sweeps included) + "
                      f"{len(fits) - len(grid)} linear baselines = {len(fits)} fits")
        return
    from fairser.experiments.executors import parse_executor

    runner = parse_executor(executor)  # a bad --executor fails before any work
    command = "fairser run " + shlex.join([str(config)] + (["--out", str(out)] if out else [])
                                          + (["--executor", executor] if executor != "local"
                                             else []))
    result = _run(cfg, out_dir=out, progress=progress, console=console, command=command,
                  executor=runner)
    _summary(console, result)


def demo(
    out: Path = typer.Option(Path("runs") / "demo", "--out", "-o", help="Run folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Synthetic corpus pair end to end (all methods, a report); about 1-2 minutes on 2 cores."""
    from fairser.experiments import run_demo

    console = make_console(stderr=True)
    console.print("[bold]fairser demo[/]: synthetic English -> Mandarin pair with a planted "
                  "gender shortcut; source-only and five fairness methods")
    result = run_demo(out_dir=out, progress=progress, console=console)
    _summary(console, result)
    if result.report is not None:
        typer.echo(f"Report: {result.report.resolve()}")


def predict(
    files: list[Path] = typer.Argument(..., help="Audio files."),
    run_dir: Path = typer.Option(..., "--run", help="Run folder (or one saved model folder)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    method: str | None = typer.Option(None, "--method", help="Method (default pa-cfa)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (default the lowest)."),
    target: str | None = typer.Option(None, "--target", help="Target corpus label."),
    condition: str | None = typer.Option(None, "--condition",
                                         help="Source condition (default all/balanced)."),
) -> None:
    """Emotion probabilities per file from the models of a finished run."""
    from fairser.experiments import predict_files

    df = predict_files(run_dir, list(files), method=method, seed=seed, target=target,
                       condition=condition)
    prob_cols = [c for c in df.columns if c.startswith("p_")]
    out = make_console()
    if as_json:
        payload = {"models": df.attrs.get("models", []),
                   "predictions": [
                       {"file": row["file"], "top": row["top"],
                        "probabilities": {c[2:]: (None if math.isnan(row[c]) else
                                                  round(float(row[c]), 6)) for c in prob_cols}}
                       for _, row in df.iterrows()]}
        out.print_json(json.dumps(payload))
        return
    models = df.attrs.get("models", [])
    title = "" if not models else (f"{models[0]['method']} seed {models[0]['seed']} "
                                   f"({models[0]['condition']} -> {models[0]['target']})")
    table = Table(title=title)
    table.add_column("file", overflow="fold")
    for col in prob_cols:
        table.add_column(f"P({col[2:]})", justify="right")
    table.add_column("top")
    for _, row in df.iterrows():
        table.add_row(str(row["file"]), *[f"{row[c]:.3f}" for c in prob_cols], str(row["top"]))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the experiment commands to ``app``."""
    app.command("run")(run)
    app.command("demo")(demo)
    app.command("predict")(predict)
