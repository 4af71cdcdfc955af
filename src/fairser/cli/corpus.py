"""`fairser corpus ...`: inspect, export, list and synthesise corpora.

``fairser corpus inspect KIND:ROOT [--json] [--skip-bad] [--skipped PATH] [--audio-check]
[-o KEY=VALUE]`` prints utterances, speakers by gender, an emotion x gender table, splits, hours
of audio, every problem found and every value resolved on request (``-o
resolve_gender=majority``). Headers are always checked; ``--audio-check`` also decodes the
samples (silent, clipped, out-of-range, truncated audio; verdicts cached per file). Exit codes:
0 when clean (or with ``--skip-bad``, which writes the skipped rows with their reasons to a
CSV), 1 when problems were found, 2 for errors (one line, no traceback). The ``--json`` keys are
documented in :mod:`fairser.corpora._report`, plus ``skipped_csv`` (path of the skipped-rows
CSV, or null).

``fairser corpus export KIND:ROOT OUT.parquet|OUT.csv`` writes the manifest (atomically) in the
format the ending names (any other ending is an error); problems are an error unless
``--skip-bad`` (skipped rows go to ``OUT.skipped.csv`` or ``--skipped``).

``fairser corpus synthesize-msp ROOT`` writes an MSP-Podcast-format folder at full size (labels
plus links to real audio) to exercise the ``msp-podcast`` adapter at scale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fairser.cli._console import make_console
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
AudioCheckOpt = Annotated[bool, typer.Option(
    "--audio-check", help="Also decode every file and report silent, clipped, out-of-range and "
    "truncated audio (slow the first time; verdicts are cached per file).")]


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
    audio_check: AudioCheckOpt = False,
) -> None:
    """Summarise a corpus and list every problem (exit 1 if any, unless --skip-bad)."""
    from fairser.corpora import save_problems, scan_corpus, summarize

    scan = scan_corpus(spec, options=parse_options(option), progress=not as_json,
                       audio_check=audio_check)
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
    out: Annotated[Path, typer.Argument(help="Output file: .parquet or .csv.",
                                        show_default=False)],
    skip_bad: SkipOpt = False,
    skipped: Annotated[Path | None, typer.Option(
        "--skipped", help="Where --skip-bad writes the skipped rows (default: "
        "OUT.skipped.csv).")] = None,
    option: OptionOpt = None,
    audio_check: AudioCheckOpt = False,
) -> None:
    """Write the corpus manifest to OUT.parquet or OUT.csv (problems are an error unless
    --skip-bad)."""
    from fairser.corpora import save_manifest, save_problems, scan_corpus
    from fairser.corpora._report import manifest_format

    manifest_format(out)  # a wrong ending fails before the scan, not after it
    scan = scan_corpus(spec, options=parse_options(option), progress=True,
                       audio_check=audio_check)
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

    table = Table("kind", "language", "splits", "description")
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


@app.command("synthesize-msp")
def synthesize_msp(
    root: Annotated[Path, typer.Argument(help="New folder to write (must not exist).",
                                         show_default=False)],
    audio_from: Annotated[Path, typer.Option(
        "--audio-from", help="Folder of real audio the links point at, e.g. ../shared/data.",
        show_default=False)],
    utterances: Annotated[int, typer.Option(help="Rows of the label table (MSP-Podcast 1.11 "
                                            "has about 151,654).")] = 151_654,
    speakers: Annotated[int, typer.Option(help="Identified speakers.")] = 2_700,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Write an MSP-Podcast-format folder (labels + links to real audio) to scan at full size."""
    import time

    from fairser.corpora.msp_scale import write_msp_scale

    start = time.perf_counter()
    out = write_msp_scale(root, audio_from=audio_from, utterances=utterances,
                          speakers=speakers, seed=seed)
    make_console().print(f"wrote {utterances} rows to {out} in {time.perf_counter() - start:.1f}"
                         f" s; scan it with `fairser corpus inspect msp-podcast:{out}`",
                         highlight=False)


def _print_summary(s: dict[str, Any], console: Console) -> None:
    spk = s["speakers"]
    console.print(f"[bold]{s['spec']}[/]", highlight=False)
    console.print(
        f"{s['utterances']} utterances, {spk['total']} speakers ({spk['M']} M, {spk['F']} F, "
        f"{spk['unknown']} unknown), {s['hours']:.3f} h of audio, languages "
        f"{', '.join(f'{k} ({v})' for k, v in s['languages'].items()) or '-'}", highlight=False)
    emo = Table("emotion", "M", "F", "unknown", "total", title="emotion x gender")
    for name, c in s["emotions"].items():
        emo.add_row(name, str(c["M"]), str(c["F"]), str(c["unknown"]), str(c["total"]))
    g = s["utterances_by_gender"]
    emo.add_row("[bold]all[/]", str(g["M"]), str(g["F"]), str(g["unknown"]),
                str(s["utterances"]))
    console.print(emo)
    spl = Table("split", "utterances", "speakers", "speakers M", "speakers F", title="splits")
    for name, c in s["splits"].items():
        spl.add_row(name, str(c["utterances"]), str(c["speakers"]), str(c["speakers_M"]),
                    str(c["speakers_F"]))
    console.print(spl)
    probs = s["problems"]
    if not probs["total"]:
        console.print("[green]no problems found[/]")
        _print_tail(s, console)
        return
    kinds = ", ".join(f"{k} {v}" for k, v in probs["by_kind"].items())
    console.print(f"[bold red]{probs['total']} problem(s)[/]: {kinds}", highlight=False)
    table = Table("kind", "where", "reason", title="problems")
    for row in probs["rows"][:_MAX_PROBLEM_ROWS]:
        table.add_row(row["kind"], _where(row), row["reason"])
    console.print(table)
    if probs["total"] > _MAX_PROBLEM_ROWS:
        console.print(f"... and {probs['total'] - _MAX_PROBLEM_ROWS} more (use --json or "
                      "--skip-bad to get every row)")
    _print_tail(s, console)


def _print_tail(s: dict[str, Any], console: Console) -> None:
    if s["resolved"]["total"]:
        table = Table("where", "column", "was", "now", "why", title=f"resolved "
                      f"({s['resolved']['total']} row(s) kept with a changed value)")
        for row in s["resolved"]["rows"][:_MAX_PROBLEM_ROWS]:
            table.add_row(_where(row), row["column"], row["value"], row["resolved"],
                          row["reason"])
        console.print(table)
    if s["audio_check"] == "headers":
        console.print("audio headers checked; add --audio-check to also check the samples "
                      "(silent, clipped, out-of-range, truncated)", highlight=False)
    if s.get("skipped_csv"):
        console.print(f"skipped rows written to {s['skipped_csv']}", highlight=False)


def _where(row: dict[str, Any]) -> str:
    where = Path(row["path"]).name
    if row["source"] and row["line"]:
        where = f"{Path(row['source']).name}:{row['line']} ({where})"
    return where
