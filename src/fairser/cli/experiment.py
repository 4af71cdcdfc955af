"""`fairser run`, `fairser demo`, `fairser predict`: parse, call fairser.experiments, print."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fairser.cli._console import config_warnings, make_console
from fairser.errors import ConfigError, FairserError


def _summary(console: Console, result) -> None:
    """Print what a grid produced; exit 1 (after printing) when some fits failed."""
    rescored = result.n_rescored
    done = result.n_runs - result.n_skipped - rescored
    again = f"{rescored} rescored, " if rescored else ""
    console.print(f"[bold green]done[/]: {result.n_runs} runs ({done} trained, {again}"
                  f"{result.n_skipped} reused) in {result.wall_s:.0f} s")
    for note in result.notes:
        console.print(f"[yellow]note[/]: {note}")
    console.print(f"results: {result.out_dir / 'results.csv'}")
    if result.table is not None:
        console.print(f"table:   {result.table}")
    if result.report is not None:
        console.print(f"report:  {result.report}")
    if result.failed:
        for key, reason in result.failed:
            console.print(f"[bold red]failed[/]: {escape(key)}: {escape(reason)}",
                          highlight=False)
        console.print(f"[bold red]{len(result.failed)} of {result.n_runs} fits failed[/] "
                      "(status 'failed' in results.csv, not scored); the others are complete; "
                      "a rerun tries the failed ones again", highlight=False)
        raise typer.Exit(code=1)


def run(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/ and "
                                  "fairser.experiments.config for every option)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Run folder (default runs/<name>)."),
    dry_run_only: bool = typer.Option(
        False, "--dry-run",
        help="Check everything the run checks (config values, methods, training options, "
        "corpora, splits, frontend, paths) without extracting or training; print the number "
        "of fits, the feature store's size and the peak memory of a fit (docs/grids.md)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    executor: str = typer.Option(
        "local", "--executor", "-x",
        help="Where the fits run: local, processes:N (N worker processes, torch threads = "
        "cores / N), ray (a local Ray cluster), ray:N (one with N CPUs) or ray:ADDRESS (a "
        "running cluster; needs pip install 'fairser\\[ray]'). Results do not depend on it."),
    gpus_per_fit: float | None = typer.Option(
        None, "--gpus-per-fit", min=0.0,
        help="Ray only: GPUs each fit asks for (0.25: four fits share a GPU; 0: CPUs only). "
        "Default: the cluster's GPUs per CPU, at most 1."),
    device: str | None = typer.Option(
        None, "--device",
        help="auto, cpu, cuda, cuda:N or mps for this run: sets training.device and "
        "features.device (and a variant's device); fit ids do not change, so finished fits "
        "are reused. Default: the config's."),
) -> None:
    """Run (or resume) an experiment grid and write results, table.md and report.html."""
    from fairser.experiments import default_backend, load_config
    from fairser.experiments import run_experiment as _run
    from fairser.experiments.dryrun import dry_run
    from fairser.experiments.executors import parse_executor
    from fairser.experiments.planning import on_device

    console = make_console(stderr=True)
    runner = parse_executor(executor, gpus_per_fit=gpus_per_fit)  # fails before any work
    cfg = load_config(config)
    if device is not None:
        try:
            cfg = on_device(cfg, device)
        except ConfigError as exc:
            raise ConfigError(f"--device: {exc}") from None
    if dry_run_only:
        try:
            with config_warnings(console):
                found = dry_run(cfg, default_backend(), out_dir=out, executor=runner)
        except FairserError as exc:
            raise ConfigError(f"{config}: {exc}") from None
        console.print(f"{config}: valid; {found.n_grid} runs "
                      f"({len(cfg.methods)} methods x {len(cfg.grid_emotions())} emotions x "
                      f"{len(cfg.seeds)} seeds x {len(cfg.targets)} targets x "
                      f"{len(cfg.source_subsample)} conditions, sweeps included) + "
                      f"{found.n_fits - found.n_grid} linear baselines = {found.n_fits} fits")
        for line in found.lines()[1:]:
            console.print(escape(line), highlight=False)
        return
    command = "fairser run " + shlex.join([str(config)] + (["--out", str(out)] if out else [])
                                          + (["--executor", executor] if executor != "local"
                                             else [])
                                          + (["--gpus-per-fit", str(gpus_per_fit)]
                                             if gpus_per_fit is not None else [])
                                          + (["--device", device] if device else []))
    with config_warnings(console):
        result = _run(cfg, out_dir=out, progress=progress, console=console, command=command,
                      executor=runner)
    _summary(console, result)


def demo(
    out: Path = typer.Option(Path("runs") / "demo", "--out", "-o", help="Run folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Synthetic corpus pair end to end (all methods and the recommended recipe, a report)."""
    from fairser.experiments import run_demo

    console = make_console(stderr=True)
    console.print("[bold]fairser demo[/]: synthetic English -> Mandarin pair with a planted "
                  "gender shortcut; source-only, five fairness methods and the recommended recipe")
    result = run_demo(out_dir=out, progress=progress, console=console)
    _summary(console, result)
    if result.report is not None:
        typer.echo(f"Report: {result.report.resolve()}")


def predict(
    files: list[Path] | None = typer.Argument(None, help="Audio files (or --manifest)."),
    run_dir: Path = typer.Option(..., "--run", help="Run folder (or one saved model folder)."),
    manifest: Path | None = typer.Option(
        None, "--manifest", "-m",
        help="CSV with a `path` column and optional `speaker`, `gender` and `corpus` columns, "
        "which feed the model's levers (per-speaker normalisation, per-gender thresholds); "
        "instead of FILES."),
    corpus: str | None = typer.Option(
        None, "--corpus",
        help="Corpus label of files without one (e.g. ased): files without a speaker get that "
        "corpus's statistics from training, when the model saw it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    method: str | None = typer.Option(None, "--method",
                                      help="Method or variant (default recommended, else "
                                      "pa-cfa)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (default the lowest)."),
    target: str | None = typer.Option(None, "--target", help="Target corpus label."),
    condition: str | None = typer.Option(None, "--condition",
                                         help="Source condition (default all/balanced)."),
    device: str | None = typer.Option(None, "--device",
                                      help="auto (default: CUDA, then MPS, else CPU), cpu, "
                                      "cuda, cuda:N or mps."),
    precision: str | None = typer.Option(
        None, "--precision",
        help="The model's arithmetic: fp32 (default), bf16 or fp16 (autocast on CUDA). "
        "Features are extracted at the precision the model was trained on."),
) -> None:
    """Emotion probabilities per file from the models of a finished run (or `fairser train`).

    Every readable file is scored; unreadable ones are listed with the reason, and the exit
    code is then 1. A lever that lacks a column (no speaker or gender for the file) falls
    back as printed, in one warning line per lever.
    """
    from fairser.experiments import predict_files

    if device is not None:
        from fairser.device import check_device_name

        device = check_device_name(device)
    if precision is not None:
        from fairser.device import PRECISIONS

        if precision not in PRECISIONS:
            raise ConfigError(f"--precision {precision!r} is not one of "
                              f"{' | '.join(PRECISIONS)}")
    df = predict_files(run_dir, list(files or []), manifest=manifest, method=method, seed=seed,
                       target=target, condition=condition, corpus=corpus, device=device,
                       precision=precision)
    err = make_console(stderr=True)
    for note in df.attrs.get("notes", []):
        err.print(f"[yellow]warning[/]: {escape(note)}", highlight=False)
    prob_cols = [c for c in df.columns if c.startswith("p_")]
    out = make_console()
    failed = df[df["error"].notna()]

    def text(value) -> str | None:
        return value if isinstance(value, str) else None

    if as_json:
        payload = {"models": df.attrs.get("models", []),
                   "predictions": [
                       {"file": row["file"], "top": text(row["top"]),
                        "decision": text(row["decision"]), "error": text(row["error"]),
                        "probabilities": {c[2:]: (None if math.isnan(row[c]) else
                                                  round(float(row[c]), 6)) for c in prob_cols}}
                       for _, row in df.iterrows()]}
        payload["notes"] = list(df.attrs.get("notes", []))
        out.print_json(json.dumps(payload))
    else:
        models = df.attrs.get("models", [])
        title = "" if not models else (f"{models[0]['method']} seed {models[0]['seed']} "
                                       f"({models[0]['condition']} -> {models[0]['target']})")
        table = Table(title=title)
        table.add_column("file", overflow="fold")
        for col in prob_cols:
            table.add_column(f"P({col[2:]})", justify="right")
        table.add_column("top")
        table.add_column("decision")
        for _, row in df[df["error"].isna()].iterrows():
            table.add_row(str(row["file"]), *[f"{row[c]:.3f}" for c in prob_cols],
                          str(row["top"]), text(row["decision"]) or "-")
        out.print(table)
    if len(failed):
        for _, row in failed.iterrows():
            err.print(f"[bold red]failed[/]: {escape(str(row['file']))}: "
                      f"{escape(str(row['error']))}", highlight=False)
        err.print(f"[bold red]{len(failed)} of {len(df)} files could not be scored[/]; the "
                  "others are above", highlight=False)
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the experiment commands to ``app``."""
    app.command("run")(run)
    app.command("demo")(demo)
    app.command("predict")(predict)
