"""What an extraction shows on stderr: the hashing bar, the compute bar, the one-line summary.

Nothing here decides anything; it renders the counts :func:`fairser.features.extract` passes.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fairser.features.featureset import ExtractStats

__all__ = ["HashProgress", "Reporter", "make_console", "summary"]

_HASH_BAR_MIN = 200  # files to hash before a hashing progress bar is worth showing


def make_console() -> Console:
    """The stderr console of the features layer (soft wrap: paths never break over lines)."""
    return Console(stderr=True, soft_wrap=True)


class _AudioRateColumn(ProgressColumn):
    """Hours of audio processed per second of wall time."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        audio_s = float(task.fields.get("audio_s", 0.0))
        rate = audio_s / 3600.0 / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.4f} audio h/s", style="cyan")


class Reporter:
    """Progress bar of the computation plus the audio seconds done (one call's state only)."""

    def __init__(self, *, total: int, label: str, enabled: bool, console: Console) -> None:
        self.enabled = enabled and total > 0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("files"), _AudioRateColumn(), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, disable=not self.enabled,
            transient=False, refresh_per_second=4,
        )
        self.task = self.progress.add_task(label, total=total, audio_s=0.0)
        self.audio_s = 0.0

    def advance(self, audio_s: float) -> None:
        """One more file done, holding ``audio_s`` seconds of audio."""
        self.audio_s += audio_s
        self.progress.update(self.task, advance=1, audio_s=self.audio_s)

    def __enter__(self) -> Reporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]


class HashProgress:
    """Callbacks for :meth:`HashCache.hash_files`: a bar only when many files must be read."""

    def __init__(self, *, enabled: bool, console: Console) -> None:
        self.enabled = enabled
        self.console = console
        self.hashed = 0
        self._bar: Progress | None = None

    def on_start(self, n_files: int) -> None:
        """Called once with the number of files whose bytes must be read."""
        if self.enabled and n_files >= _HASH_BAR_MIN:
            self._bar = Progress(TextColumn("[bold]hashing audio"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
            self._bar.add_task("hash", total=n_files)

    def on_hashed(self, _n_bytes: int) -> None:
        """Called after each file read."""
        self.hashed += 1
        if self._bar is not None:
            self._bar.advance(self._bar.task_ids[0])

    def stop(self) -> None:
        """Remove the bar (if any)."""
        if self._bar is not None:
            self._bar.stop()


def summary(console: Console, *, name: str, stats: ExtractStats, folder: Path) -> None:
    """Print the one-line summary of an extraction."""
    check_only, verified = stats.check_only, stats.verified
    head = f"[bold]{name}[/]"
    if stats.shard is not None:
        head += f" shard {stats.shard[0]}/{stats.shard[1]}"
    parts = [f"{head}: {stats.n_rows} rows", f"{stats.n_cached} cached"]
    if check_only:
        parts.append(f"[{'red' if stats.n_missing else 'green'}]{stats.n_missing} missing[/]")
    else:
        computed = f"{stats.n_computed} computed"
        if stats.n_computed:
            computed += (f" ({stats.audio_s / 3600:.3f} h audio in {stats.compute_s:.1f} s, "
                         f"RTF {stats.rtf:.4f})")
        parts.append(computed)
    if stats.n_damaged or verified:
        what = "left as they are" if check_only else "recomputed"
        parts.append(f"[{'red' if stats.n_damaged else 'green'}]{stats.n_damaged} damaged"
                     f"{f' ({what})' if stats.n_damaged else ''}[/]")
    parts.append(f"[{'red' if stats.n_bad else 'green'}]{stats.n_bad} bad[/]")
    console.print(", ".join(parts) + f" -> {folder}", highlight=False, soft_wrap=True)
