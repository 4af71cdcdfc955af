"""`fairser features ...`: parse, call :func:`fairser.features.extract`, print. No logic here."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from fairser.cli._console import make_console
from fairser.errors import ConfigError, FeatureError

app = typer.Typer(help="Extract and inspect frame features (cached, resumable).",
                  no_args_is_help=True)


def _parse_options(pairs: list[str], allow_download: bool) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE, e.g. --option n_mels=64")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    if allow_download:
        options["allow_download"] = True
    return options


@app.command("extract")
def extract_cmd(
    corpus: str = typer.Argument(..., metavar="KIND:ROOT",
                                 help="Corpus spec, e.g. ravdess:/data/ravdess."),
    frontend: str = typer.Option(..., "--frontend", "-f",
                                 help="whisper-base, whisper-tiny.en, logmel, egemaps-lld, "
                                      "compare-lld, egemaps-functionals or hf:<model>."),
    layers: str | None = typer.Option(None, "--layers", "-l",
                                      help="Encoder layers: an index, a list (2,4,6; negative "
                                           "counts from the end) or 'all'. Default: last."),
    cache: Path | None = typer.Option(None, "--cache",
                                      help="Cache root (default $FAIRSER_CACHE or "
                                           "~/.cache/fairser)."),
    workers: int = typer.Option(1, "--workers", "-w",
                                help="Processes for openSMILE/log-mel frontends."),
    threads: int | None = typer.Option(None, "--threads",
                                       help="torch threads (default: all available CPUs)."),
    option: list[str] = typer.Option([], "--option", "-o",
                                     help="Frontend option KEY=VALUE (repeatable)."),
    allow_download: bool = typer.Option(False, "--allow-download",
                                        help="Let hf:<hub id> fetch weights from the hub."),
    device: str = typer.Option("auto", "--device",
                               help="auto | cpu | cuda | cuda:N | mps, for neural frontends "
                                    "(auto: CUDA, then MPS, else CPU; cuda:LOCAL_RANK under "
                                    "torchrun)."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32 | bf16 | fp16 for neural frontends (a separate "
                                       "store entry per precision)."),
    batch_seconds: float | None = typer.Option(None, "--batch-seconds",
                                               help="Padded audio seconds per neural batch "
                                                    "(default 60 on CPU, 600 on a GPU)."),
    dtype: str | None = typer.Option(None, "--dtype",
                                     help="Storage dtype: float16 or float32 (default: the "
                                          "frontend's, float16 except compare-lld)."),
    retry_bad: bool = typer.Option(False, "--retry-bad",
                                   help="Retry files an earlier run found bad."),
    verify: bool = typer.Option(False, "--verify",
                                help="Check every value of every entry of this corpus (not "
                                     "only the cheap checks of every run); recompute damaged "
                                     "ones."),
    check_only: bool = typer.Option(False, "--check-only",
                                    help="Compute nothing: report missing rows and damaged "
                                         "entries (exit 2 if any)."),
    skip_bad: bool = typer.Option(False, "--skip-bad",
                                  help="Leave corpus rows with problems out (see "
                                       "`fairser corpus inspect`)."),
    bad_csv: Path | None = typer.Option(None, "--bad-csv",
                                        help="Write the bad files and reasons to this CSV."),
    shard: str | None = typer.Option(None, "--shard", metavar="K/N",
                                     help="Extract only shard K of N (0-based, like torchrun's "
                                          "RANK; default: RANK/WORLD_SIZE under torchrun, else "
                                          "all). Shards share the store; run without --shard "
                                          "afterwards to check completeness."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Extract features of every utterance of a corpus into the store (resumes if rerun)."""
    from fairser.corpora import load_corpus
    from fairser.features import extract
    from fairser.features._progress import summary
    from fairser.features.shard import parse_shard, shard_from_env

    console = make_console(stderr=True)
    picked = parse_shard(shard) if shard is not None else shard_from_env()
    manifest = load_corpus(corpus, skip_bad=skip_bad)
    fs = extract(manifest, frontend, layers=layers, options=_parse_options(option,
                                                                           allow_download),
                 cache_dir=cache, workers=workers, progress=progress, threads=threads,
                 dtype=dtype, device=device, precision=precision, batch_seconds=batch_seconds,
                 retry_bad=retry_bad, verify=verify, check_only=check_only, shard=picked)
    if not progress:  # extract() prints the summary itself when progress is on
        summary(console, name=fs.frontend, stats=fs.stats, folder=fs.folder)
    if len(fs.damaged):
        what = "left as they are" if check_only else "recomputed"
        table = Table(title=f"{len(fs.damaged)} damaged store entry(ies), {what}")
        table.add_column("utterance")
        table.add_column("entry", overflow="fold")
        table.add_column("damage", overflow="fold")
        for row in fs.damaged.head(20).itertuples():
            table.add_row(f"{row.corpus}/{row.utt_id}", str(row.entry), str(row.reason))
        console.print(table)
    if len(fs.bad):
        table = Table(title=f"{len(fs.bad)} bad file(s)", show_lines=False)
        table.add_column("utterance")
        table.add_column("reason", overflow="fold")
        for row in fs.bad.head(20).itertuples():
            table.add_row(f"{row.corpus}/{row.utt_id}", str(row.reason))
        console.print(table)
        if len(fs.bad) > 20:
            console.print(f"... and {len(fs.bad) - 20} more" +
                          ("" if bad_csv else " (use --bad-csv FILE for all)"))
    if bad_csv is not None:
        from fairser._io import atomic_write_text

        atomic_write_text(bad_csv, fs.bad.to_csv(index=False))
        console.print(f"bad files: {bad_csv}")
    if check_only and (fs.stats.n_missing or fs.stats.n_damaged):
        raise FeatureError(
            f"{fs.folder}: {fs.stats.n_missing} row(s) missing and {fs.stats.n_damaged} damaged "
            f"entr{'y' if fs.stats.n_damaged == 1 else 'ies'}; run the same command without "
            f"--check-only to compute them")


@app.command("list")
def list_cmd() -> None:
    """List the available frontends."""
    from fairser.features import frontend_names

    for name in frontend_names():
        typer.echo(name)
