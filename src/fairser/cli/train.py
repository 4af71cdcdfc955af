"""``fairser train CONFIG.yaml``: train one model as the YAML file describes.

The file's keys are those of :class:`fairser.training.run.RunConfig` (source and target corpus
specs, frontend and layers, method, emotion, seed, workdir, and ``training:`` options of
:class:`fairser.training.TrainConfig`). A rerun resumes from the workdir's last checkpoint.
``--device`` and ``--precision`` override the file's ``training.device`` / ``precision``
(extraction has its own top-level keys: ``features_device``, ``features_precision``,
``features_batch_seconds``); launched as ``torchrun --nproc_per_node=N --no-python fairser
train RUN.yaml`` every process extracts its shard of the features, then trains with
DistributedDataParallel on N processes (the process group's timeout: ``dist_timeout_s``, else
``$FAIRSER_DIST_TIMEOUT_S``, else 4 hours), and only rank 0 prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fairser.cli._console import config_warnings, make_console


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command("train")
    def train(
        config: Annotated[Path, typer.Argument(help="Run YAML (see fairser.training.run).")],
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        device: Annotated[
            str | None,
            typer.Option(help="auto | cpu | cuda | cuda:N | mps (default: the file's)."),
        ] = None,
        precision: Annotated[
            str | None, typer.Option(help="fp32 | bf16 | fp16 (default: the file's).")
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(min=0, help="DataLoader worker processes (default: the file's)."),
        ] = None,
    ) -> None:
        """Train one model (two-stage fair transfer) and print its scores."""
        from fairser.device import PRECISIONS, check_device_name
        from fairser.errors import ConfigError
        from fairser.training.run import run_from_file

        if device is not None:
            check_device_name(device)
        if precision is not None and precision not in PRECISIONS:
            raise ConfigError(f"--precision {precision!r} is not one of {' | '.join(PRECISIONS)}")
        with config_warnings(make_console(stderr=True)):
            _, summary = run_from_file(
                config, progress=progress, device=device, precision=precision,
                num_workers=workers,
            )
        if summary.get("rank", 0) != 0:
            return  # a non-zero rank of a torchrun launch: rank 0 prints
        if as_json:
            typer.echo(json.dumps(summary, indent=1, default=str))
            return
        table = Table(title=f"model saved in {summary['model']}")
        for col in ("evaluated on", "rows", "UAR", "own gender head acc."):
            table.add_column(col)
        for name in ("source_test", "target"):
            res = summary.get(name)
            if res is None:
                continue
            table.add_row(
                name,
                str(res["rows"]),
                "-" if res["uar"] is None else f"{res['uar']:.3f}",
                "-" if res["gender_head_acc"] is None else f"{res['gender_head_acc']:.3f}",
            )
        make_console().print(table)
        make_console().print(
            f"device {summary.get('device')}, precision {summary.get('precision')}, "
            f"{summary.get('world_size', 1)} process(es)"
        )
        if summary.get("pseudo_gender_accuracy") is not None:
            make_console().print(
                f"pseudo target gender accuracy: {summary['pseudo_gender_accuracy']:.3f}"
            )
