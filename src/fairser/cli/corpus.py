"""`fairser corpus ...`: inspect, export, list and synthesise corpora.

``fairser corpus inspect KIND:ROOT [--json] [--skip-bad] [--skipped PATH] [-o KEY=VALUE]``
prints utterances, speakers by gender, an emotion x gender table, splits, hours of audio and
every problem found. Exit codes: 0 when clean (or with ``--skip-bad``, which writes the skipped
rows with their reasons to a CSV), 1 when problems were found, 2 for errors (one line, no
traceback). The ``--json`` keys are documented in :mod:`fairser.corpora._report`, plus
``skipped_csv`` (path of the skipped-rows CSV, or null).

``fairser corpus export KIND:ROOT OUT.parquet`` writes the manifest (atomically); problems are an
error unless ``--skip-bad`` (skipped rows go to ``OUT.skipped.csv`` or ``--skipped``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fairser.cli._console import make_console, make_table
from fairser.errors import ConfigError

app = typer.Typer(help="Inspect and export emotional speech corpora.", no_args_is_help=True)

_SPEC_HELP = ("Corpus as KIND:ROOT, e.g. ravdess:../shared/data/ravdess (kinds: see "
              "`fairser corpus list`).")
_OPTION_HELP = ("Adapter option KEY=VALUE (repeatable); VALUE is parsed as JSON when it parses, "
                "e.g. -o seed=3 -o 'label_map={\"09\": \"other\"}'.")
_MAX_PROBLEM_ROWS = 50

SpecArg = Annotated[str, typer.Argument(help=_SPEC_HELP, show_default=False)]
OptionOpt = Annotated[list[str] | None, typer.Option("--option", "-o", help=_OPTION_HELP)]
SkipOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip rows with problems and write "
                                       "them, with reasons, to a CSV instead of failing.")]


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into an options dict (values parsed as JSON if possible)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE, e.g. -o seed=3")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _default_skipped(spec: str) -> Path:
    kind = spec.split(":", 1)[0].strip().lower() or "corpus"
    return Path(f"{kind}.skipped.csv")


@app.command("inspect")
def inspect(
    spec: SpecArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON with stable keys.")] = False,
    skip_bad: SkipOpt = False,
    skipped: Annotated[Path | None, typer.Option(
        "--skipped", help="Where --skip-bad writes the skipped rows (default: "
        "./KIND.skipped.csv).")] = None,
    option: OptionOpt = None,
) -> None:
    """Summarise a corpus and list every problem (exit 1 if any, unless --skip-bad)."""
    from fairser.corpora import save_problems, scan_corpus, summarize

    scan = scan_corpus(spec, options=parse_options(option), progress=not as_json)
    summary = summarize(scan)
    written = None
    if skip_bad and len(scan.problems):
        written = save_problems(scan.problems, skipped or _default_skipped(spec))
    summary["skipped_csv"] = str(written) if written else None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print_summary(summary, make_console())
    if len(scan.problems) and not skip_bad:
        raise typer.Exit(code=1)


@app.command("export")
def export(
    spec: SpecArg,
    out: Annotated[Path, typer.Argument(help="Output parquet file.", show_default=False)],
    skip_bad: SkipOpt = False,
    skipped: Annotated[Path | None, typer.Option(
        "--skipped", help="Where --skip-bad writes the skipped rows (default: "
        "OUT.skipped.csv).")] = None,
    option: OptionOpt = None,
) -> None:
    """Write the corpus manifest to OUT.parquet (problems are an error unless --skip-bad)."""
    from fairser.corpora import save_manifest, save_problems, scan_corpus

    scan = scan_corpus(spec, options=parse_options(option), progress=True)
    console = make_console(stderr=True)
    if len(scan.problems):
        if not skip_bad:
            scan.raise_for_problems()
        target = skipped or out.with_name(out.stem + ".skipped.csv")
        save_problems(scan.problems, target)
        console.print(f"skipped {len(scan.problems)} row(s) with problems; reasons in {target}",
                      highlight=False)
    save_manifest(scan.manifest, out)
    console.print(f"wrote {len(scan.manifest)} utterances to {out}", highlight=False)


@app.command("list")
def list_kinds() -> None:
    """List the corpus kinds KIND:ROOT accepts."""
    from fairser.corpora import CORPORA

    table = make_table("kind", "language", "splits", "description", keep=("kind",))
    for kind, adapter in CORPORA.items():
        table.add_row(kind, adapter.language, "official" if adapter.official_splits
                      else "assigned", adapter.description)
    make_console().print(table)


@app.command("synthesize")
def synthesize(
    root: Annotated[Path | None, typer.Option(help="Parent folder (default: the cache).")] = None,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Generate (or reuse) the built-in synthetic source/target pair and print where it is."""
    from fairser.corpora.synthetic import generate_pair, pair_dir

    src, tgt = generate_pair(root, seed=seed, progress=True)
    make_console().print(f"synth-en: {len(src)} utterances, synth-zh: {len(tgt)} utterances in "
                    f"{pair_dir(root, seed=seed)}", highlight=False)


def _print_summary(s: dict[str, Any], console: Console) -> None:
    spk = s["speakers"]
    console.print(f"[bold]{s['spec']}[/]", highlight=False)
    console.print(
        f"{s['utterances']} utterances, {spk['total']} speakers ({spk['M']} M, {spk['F']} F, "
        f"{spk['unknown']} unknown), {s['hours']:.3f} h of audio, languages "
        f"{', '.join(f'{k} ({v})' for k, v in s['languages'].items()) or '-'}", highlight=False)
    emo = make_table("emotion", "M", "F", "unknown", "total", title="emotion x gender")
    for name, c in s["emotions"].items():
        emo.add_row(name, str(c["M"]), str(c["F"]), str(c["unknown"]), str(c["total"]))
    g = s["utterances_by_gender"]
    emo.add_row("[bold]all[/]", str(g["M"]), str(g["F"]), str(g["unknown"]),
                str(s["utterances"]))
    console.print(emo)
    spl = make_table("split", "utterances", "speakers", "speakers M", "speakers F", title="splits")
    for name, c in s["splits"].items():
        spl.add_row(name, str(c["utterances"]), str(c["speakers"]), str(c["speakers_M"]),
                    str(c["speakers_F"]))
    console.print(spl)
    probs = s["problems"]
    if not probs["total"]:
        console.print("[green]no problems found[/]")
        return
    kinds = ", ".join(f"{k} {v}" for k, v in probs["by_kind"].items())
    console.print(f"[bold red]{probs['total']} problem(s)[/]: {kinds}", highlight=False)
    table = make_table("kind", "where", "reason", title="problems", keep=("kind",))
    for row in probs["rows"][:_MAX_PROBLEM_ROWS]:
        where = Path(row["path"]).name
        if row["source"] and row["line"]:
            where = f"{Path(row['source']).name}:{row['line']} ({where})"
        table.add_row(row["kind"], where, row["reason"])
    console.print(table)
    if probs["total"] > _MAX_PROBLEM_ROWS:
        console.print(f"... and {probs['total'] - _MAX_PROBLEM_ROWS} more (use --json or "
                      "--skip-bad to get every row)")
    if s.get("skipped_csv"):
        console.print(f"skipped rows written to {s['skipped_csv']}", highlight=False)
