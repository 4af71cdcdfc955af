"""``extract()``: manifest -> features in the store, computing only what is missing.

Flow: check the manifest, hash the audio (hash cache), look every row up in the store, compute
the missing distinct audio contents, publish each entry atomically, return a
:class:`~fairser.features.featureset.FeatureSet`.

Execution:

* batched frontends (neural encoders) run in this process on length-sorted batches (little
  padding), with the next batches' audio decoded by a background thread while torch computes;
* per-file frontends (openSMILE, log-mel) run in ``workers`` spawned processes that write their
  entries themselves; a worker that dies (killed, out of memory) is replaced, the files it had in
  flight are retried one at a time, and a file that kills a worker again is reported as bad.

Every finished entry is on disk the moment it is published, so an interrupted run (Ctrl-C,
SIGKILL, power loss of the process) loses at most the batch in flight; the next call resumes.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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

from fairser.audio import audio_info, load_audio
from fairser.corpora import utt_key
from fairser.errors import AudioError, FairserError, FeatureError
from fairser.features.base import Frontend, LayerSpec
from fairser.features.featureset import BAD_COLUMNS, ExtractStats, FeatureSet
from fairser.features.registry import build_frontend
from fairser.features.store import FeatureStore, HashCache, features_root

__all__ = ["extract", "utt_key"]

_REQUIRED = ("corpus", "utt_id", "path")
_HASH_BAR_MIN = 200  # files to hash before a hashing progress bar is worth showing


@dataclass
class _Item:
    """One distinct audio content to compute."""

    audio_hash: str
    path: str
    duration_s: float
    rows: list[int] = field(default_factory=list)


@dataclass
class _Outcome:
    audio_hash: str
    ok: bool
    reason: str = ""
    cache_failure: bool = False
    audio_s: float = 0.0


# ---------------------------------------------------------------------------------------------
# manifest


def _check_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(manifest, pd.DataFrame):
        raise FeatureError(
            f"extract() needs a manifest DataFrame, got {type(manifest).__name__}; "
            f"build one with fairser.corpora.load_corpus")
    missing = [c for c in _REQUIRED if c not in manifest.columns]
    if missing:
        raise FeatureError(
            f"manifest lacks column(s) {', '.join(missing)}; "
            f"build it with fairser.corpora.load_corpus or add the columns")
    df = pd.DataFrame({
        "corpus": manifest["corpus"].astype("string"),
        "utt_id": manifest["utt_id"].astype("string"),
        "path": manifest["path"].astype("string"),
    }).reset_index(drop=True)
    for col in _REQUIRED:
        nulls = np.flatnonzero(df[col].isna().to_numpy() | (df[col].fillna("") == "").to_numpy())
        if len(nulls):
            i = int(nulls[0])
            raise FeatureError(
                f"manifest row {i} ({df.at[i, 'corpus']}/{df.at[i, 'utt_id']}): column {col} "
                f"is empty; fill it or drop the row")
    df["key"] = [utt_key(c, u) for c, u in zip(df["corpus"], df["utt_id"], strict=True)]
    dup = df["key"].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:2]
        raise FeatureError(
            f"manifest rows {int(rows[0])} and {int(rows[1])} share the key "
            f"{df.at[int(rows[0]), 'key']}; utt_id must be unique within a corpus")
    df["path"] = [os.path.abspath(p) for p in df["path"]]
    if "duration_s" in manifest.columns:
        df["duration_s"] = pd.to_numeric(manifest["duration_s"], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan)
    else:
        df["duration_s"] = np.nan
    return df


# ---------------------------------------------------------------------------------------------
# progress


class _AudioRateColumn(ProgressColumn):
    """Hours of audio processed per second of wall time."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        audio_s = float(task.fields.get("audio_s", 0.0))
        rate = audio_s / 3600.0 / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.4f} audio h/s", style="cyan")


class _Reporter:
    """Progress bar plus the bookkeeping of outcomes (no state shared beyond one call)."""

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

    def advance(self, outcome: _Outcome) -> None:
        self.audio_s += outcome.audio_s
        self.progress.update(self.task, advance=1, audio_s=self.audio_s)

    def __enter__(self) -> _Reporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# computing


def _load(fe: Frontend, item: _Item) -> np.ndarray:
    signal = load_audio(item.path, sample_rate=fe.sample_rate)
    if len(signal) < fe.min_samples():
        raise AudioError(
            f"{item.path}: audio too short ({1000 * len(signal) / fe.sample_rate:.1f} ms; "
            f"{fe.name} needs at least {1000 * fe.min_samples() / fe.sample_rate:.1f} ms); "
            f"remove the file from the corpus")
    return signal


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _compute_and_store(fe: Frontend, store: FeatureStore, items: list[_Item],
                       signals: list[np.ndarray]) -> list[_Outcome]:
    """Run ``fe`` on a batch and publish each entry; a failing batch is retried item by item."""
    try:
        feats = fe.compute(signals)
    except Exception as exc:  # noqa: BLE001 - reported per file, the run goes on
        if len(items) > 1:
            out: list[_Outcome] = []
            for it, sig in zip(items, signals, strict=True):
                out.extend(_compute_and_store(fe, store, [it], [sig]))
            return out
        deterministic = isinstance(exc, FairserError)
        return [_Outcome(items[0].audio_hash, False, f"{fe.name} failed: {_short(exc)}",
                         cache_failure=deterministic)]
    out = []
    for it, sig, arr in zip(items, signals, feats, strict=True):
        try:
            store.put(it.audio_hash, arr)
        except FeatureError as exc:
            out.append(_Outcome(it.audio_hash, False, f"{it.path}: {exc}", cache_failure=True))
            continue
        out.append(_Outcome(it.audio_hash, True, audio_s=len(sig) / fe.sample_rate))
    return out


def _batches(items: list[_Item], *, batched: bool, batch_seconds: float,
             max_items: int = 64) -> list[list[_Item]]:
    """Length-sorted groups whose padded audio stays under ``batch_seconds``."""
    ordered = sorted(items, key=lambda it: (it.duration_s, it.path))
    if not batched:
        return [[it] for it in ordered]
    out: list[list[_Item]] = []
    cur: list[_Item] = []
    for it in ordered:
        longest = max(it.duration_s, cur[-1].duration_s if cur else 0.0)
        if cur and (longest * (len(cur) + 1) > batch_seconds or len(cur) >= max_items):
            out.append(cur)
            cur = []
        cur.append(it)
    if cur:
        out.append(cur)
    return out


def _load_batch(fe: Frontend, batch: list[_Item]) -> tuple[list[tuple[_Item, np.ndarray]],
                                                           list[_Outcome]]:
    good, bad = [], []
    for it in batch:
        try:
            good.append((it, _load(fe, it)))
        except AudioError as exc:
            bad.append(_Outcome(it.audio_hash, False, str(exc), cache_failure=True))
        except Exception as exc:  # noqa: BLE001 - reported per file, the run goes on
            bad.append(_Outcome(it.audio_hash, False, f"{it.path}: {_short(exc)}"))
    return good, bad


def _run_in_process(fe: Frontend, store: FeatureStore, items: list[_Item], *,
                    batch_seconds: float, on_outcome: Callable[[_Outcome], None]) -> None:
    batches = _batches(items, batched=fe.batched, batch_seconds=batch_seconds)
    if not batches:
        return
    fe.load()

    def handle(good: list[tuple[_Item, np.ndarray]], bad: list[_Outcome]) -> None:
        for outcome in bad:
            on_outcome(outcome)
        if good:
            for outcome in _compute_and_store(fe, store, [g[0] for g in good],
                                              [g[1] for g in good]):
                on_outcome(outcome)

    if not fe.batched:
        # Per-file frontends: decode inline. A loader thread would fight openSMILE's per-frame
        # Python callbacks for the GIL (5 ms switch interval) and cost more than decoding does.
        for batch in batches:
            handle(*_load_batch(fe, batch))
        return
    # Neural batches: torch releases the GIL, so the next batches decode in the background.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairser-audio") as loader:
        queue: deque[Future] = deque()
        todo = iter(batches)
        for batch in _take(todo, 2):
            queue.append(loader.submit(_load_batch, fe, batch))
        while queue:
            good, bad = queue.popleft().result()
            for nxt in _take(todo, 1):
                queue.append(loader.submit(_load_batch, fe, nxt))
            handle(good, bad)


def _take(it: Iterator[Any], n: int) -> list[Any]:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


# Worker processes: each holds its own (loaded) frontend and store handle. This module-level
# slot is only ever assigned inside worker processes, by the pool initializer.
_WORKER_STATE: dict[str, Any] = {}


def _worker_init(fe: Frontend, store: FeatureStore) -> None:
    # One intra-op thread per worker process. Set through the environment so that torch, if a
    # frontend imports it later, starts that way (importing torch here would cost every
    # openSMILE worker a second of start-up for nothing).
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    _WORKER_STATE["fe"] = fe
    _WORKER_STATE["store"] = store


def _worker_task(item: _Item) -> _Outcome:
    fe: Frontend = _WORKER_STATE["fe"]
    store: FeatureStore = _WORKER_STATE["store"]
    good, bad = _load_batch(fe, [item])
    if bad:
        return bad[0]
    fe.load()
    return _compute_and_store(fe, store, [item], [good[0][1]])[0]


def _run_pool(fe: Frontend, store: FeatureStore, items: list[_Item], *, workers: int,
              on_outcome: Callable[[_Outcome], None]) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch/OpenMP init can deadlock
    pending: deque[_Item] = deque(sorted(items, key=lambda it: -it.duration_s))
    suspects: deque[_Item] = deque()
    while pending or suspects:
        isolate = not pending  # suspects run one at a time to pin down a crashing file
        source = pending if pending else suspects
        limit = 1 if isolate else workers * 3
        in_flight: dict[Future, _Item] = {}
        try:
            with ProcessPoolExecutor(max_workers=1 if isolate else workers, mp_context=ctx,
                                     initializer=_worker_init, initargs=(fe, store)) as pool:
                while source or in_flight:
                    while source and len(in_flight) < limit:
                        it = source.popleft()
                        in_flight[pool.submit(_worker_task, it)] = it
                    done, _ = wait_futures(list(in_flight), return_when=FIRST_COMPLETED)
                    for fut in done:
                        outcome = fut.result()  # raises BrokenProcessPool if its worker died
                        del in_flight[fut]
                        on_outcome(outcome)
        except BrokenProcessPool:
            lost = list(in_flight.values())
            if isolate:
                for it in lost:
                    on_outcome(_Outcome(it.audio_hash, False,
                                        f"{it.path}: a worker process died computing it "
                                        f"(killed or out of memory); check the file"))
            else:
                suspects.extend(lost)


# ---------------------------------------------------------------------------------------------
# public API


@contextmanager
def _torch_threads(n: int | None, *, batched: bool) -> Iterator[None]:
    """Set torch's intra-op threads for the call and restore them afterwards.

    Neural batches use every available CPU; per-file frontends (small STFTs) use one thread,
    since OpenMP's fork-join costs more than it saves on small tensors and stalls badly when
    the CPUs are shared.
    """
    import torch

    old = torch.get_num_threads()
    want = n if n is not None else (max(1, len(os.sched_getaffinity(0))) if batched else 1)
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def extract(manifest: pd.DataFrame, frontend: str | Frontend, *, layers: LayerSpec = None,
            options: dict[str, Any] | None = None, cache_dir: str | Path | None = None,
            workers: int = 1, progress: bool = True, threads: int | None = None,
            dtype: str | None = None, batch_seconds: float = 120.0,
            retry_bad: bool = False) -> FeatureSet:
    """Features of every manifest row, computed once and served from the store afterwards.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Needs ``corpus``, ``utt_id``, ``path``; ``duration_s`` (if present) orders batches.
    frontend : str or Frontend
        A registered name (``whisper-base``, ``whisper-tiny.en``, ``logmel``, ``egemaps-lld``,
        ``compare-lld``, ``egemaps-functionals``), ``"hf:<hub id or folder>"``, or an instance.
    layers : int, list of int, "all" or None
        Encoder layers to keep (default: the last); ignored for an instance.
    options : dict, optional
        Frontend options (e.g. ``{"allow_download": True}`` for ``hf:``); unknown keys are
        errors.
    cache_dir : str or Path, optional
        Cache root (default ``$FAIRSER_CACHE`` or ``~/.cache/fairser``).
    workers : int, default=1
        Processes for per-file frontends (openSMILE, log-mel); neural encoders always run
        in this process and use ``threads`` instead.
    progress : bool, default=True
        Show a progress bar and a summary on stderr.
    threads : int, optional
        torch threads during the call (default: the CPUs available to this process for neural
        encoders, 1 for per-file frontends); restored afterwards.
    dtype : {"float16", "float32"}, optional
        Storage dtype (part of the store key). Default: the frontend's ``store_dtype``,
        float16 for all but ``compare-lld`` (whose spectral variance overflows float16).
    batch_seconds : float, default=120.0
        Padded audio seconds per neural batch (bounds peak memory).
    retry_bad : bool, default=False
        Recompute files whose failure was recorded by an earlier run.

    Returns
    -------
    FeatureSet
        ``fs[utt_key]`` -> ``(L, T, D)`` array; rows that failed are in ``fs.bad``.

    Raises
    ------
    FeatureError
        The manifest lacks columns, has empty cells or duplicate keys.
    ConfigError
        Unknown frontend, bad layers or options.
    """
    t0 = time.perf_counter()
    if dtype not in (None, "float16", "float32"):
        raise FeatureError(f"dtype={dtype!r} is not supported; use 'float16' or 'float32'")
    if workers < 1:
        raise FeatureError(f"workers={workers} must be at least 1")
    df = _check_manifest(manifest)
    if isinstance(frontend, Frontend):
        fe = frontend
        if layers is not None or options:
            raise FeatureError("layers/options are set on a Frontend instance, not in extract(); "
                               "pass a frontend name to use them")
    else:
        fe = build_frontend(frontend, layers=layers, options=options, cache_dir=cache_dir)
    root = features_root(cache_dir)
    store_dtype = dtype or fe.store_dtype
    store = FeatureStore(root, fe.name, fe.config(), dtype=store_dtype).open()
    console = Console(stderr=True, soft_wrap=True)
    # A layer subset is served from existing all-layer entries rather than recomputed.
    superset: FeatureStore | None = None
    if 1 < fe.n_layers != len(fe.layers):
        full = fe.with_layers("all")
        candidate = FeatureStore(root, full.name, full.config(), dtype=store_dtype)
        superset = candidate if candidate.folder.is_dir() else None
    selections: dict[str, tuple[int, ...]] = {}

    hashed = 0
    hash_bar: Progress | None = None

    def on_start(n_files: int) -> None:  # a bar only when many files must be read
        nonlocal hash_bar
        if progress and n_files >= _HASH_BAR_MIN:
            hash_bar = Progress(TextColumn("[bold]hashing audio"), BarColumn(),
                                MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                                transient=True)
            hash_bar.start()
            hash_bar.add_task("hash", total=n_files)

    def on_hashed(_n_bytes: int) -> None:
        nonlocal hashed
        hashed += 1
        if hash_bar is not None:
            hash_bar.advance(hash_bar.task_ids[0])

    try:
        hashes = HashCache(root).hash_files(df["path"], on_start=on_start, on_hashed=on_hashed)
    finally:
        if hash_bar is not None:
            hash_bar.stop()

    paths = df["path"].tolist()
    entries: dict[str, Path] = {}
    bad_rows: dict[int, str] = {}
    todo: dict[str, _Item] = {}
    n_cached = 0
    for i, (key, path, dur) in enumerate(zip(df["key"], paths, df["duration_s"], strict=True)):
        h = hashes[path]
        if isinstance(h, FeatureError):
            bad_rows[i] = str(h)
            continue
        entry = store.path(h)
        if h in todo:
            todo[h].rows.append(i)
            continue
        if os.path.isfile(entry):
            entries[key] = entry
            n_cached += 1
            continue
        if superset is not None and os.path.isfile(superset.path(h)):
            entries[key] = superset.path(h)
            selections[key] = fe.layers
            n_cached += 1
            continue
        if not retry_bad:
            reason = store.error(h)
            if reason is not None:
                bad_rows[i] = reason
                continue
        else:
            store.clear_error(h)
        todo[h] = _Item(h, path, float(dur), [i])

    for it in todo.values():  # durations for batching and the audio-rate column
        if not math.isfinite(it.duration_s):
            try:
                it.duration_s = audio_info(it.path).duration_s
            except AudioError:
                it.duration_s = 0.0  # load_audio reports the problem with its reason

    n_computed = 0
    t_compute = time.perf_counter()
    with _Reporter(total=len(todo), label=f"{fe.name}", enabled=progress,
                   console=console) as reporter:

        def on_outcome(outcome: _Outcome) -> None:
            nonlocal n_computed
            item = todo[outcome.audio_hash]
            if outcome.ok:
                n_computed += 1
                for i in item.rows:
                    entries[df.at[i, "key"]] = store.path(item.audio_hash)
            else:
                if outcome.cache_failure:
                    try:
                        store.put_error(item.audio_hash, outcome.reason)
                    except OSError:
                        pass
                for i in item.rows:
                    bad_rows[i] = outcome.reason
            reporter.advance(outcome)

        items = list(todo.values())
        if items:
            if fe.batched or workers == 1 or len(items) == 1:
                with _torch_threads(threads, batched=fe.batched):
                    _run_in_process(fe, store, items, batch_seconds=batch_seconds,
                                    on_outcome=on_outcome)
            else:
                _run_pool(fe, store, items, workers=workers, on_outcome=on_outcome)
        audio_s = reporter.audio_s
    compute_s = time.perf_counter() - t_compute if todo else 0.0

    bad = pd.DataFrame(
        [(df.at[i, "corpus"], df.at[i, "utt_id"], paths[i], r) for i, r in sorted(
            bad_rows.items())], columns=list(BAD_COLUMNS)).astype("string")
    ordered = {k: entries[k] for k in df["key"] if k in entries}
    stats = ExtractStats(n_rows=len(df), n_cached=n_cached, n_computed=n_computed,
                         n_bad=len(bad), audio_s=audio_s, hashed=hashed,
                         wall_s=time.perf_counter() - t0, compute_s=compute_s)
    if progress:
        _summary(console, fe, stats, store)
    return FeatureSet(frontend=fe.name, layers=fe.layers, dim=fe.dim, frame_rate=fe.frame_rate,
                      entries=ordered, bad=bad, stats=stats, folder=store.folder,
                      config=store.config, selections=selections)


def _summary(console: Console, fe: Frontend, stats: ExtractStats, store: FeatureStore) -> None:
    parts = [f"[bold]{fe.name}[/]: {stats.n_rows} rows", f"{stats.n_cached} cached",
             f"{stats.n_computed} computed"]
    if stats.n_computed:
        parts.append(f"{stats.audio_s / 3600:.3f} h audio in {stats.compute_s:.1f} s "
                     f"(RTF {stats.rtf:.4f})")
    parts.append(f"[{'red' if stats.n_bad else 'green'}]{stats.n_bad} bad[/]")
    console.print(", ".join(parts) + f" -> {store.folder}", highlight=False, soft_wrap=True)
