"""How missing entries get computed: batches, the audio loader thread, worker processes.

* batched frontends (neural encoders) run in this process on length-sorted batches whose padded
  audio stays under ``batch_seconds``, with the next batches' audio decoded by a background
  thread while torch computes;
* per-file frontends (openSMILE, log-mel) run in ``workers`` spawned processes that write their
  entries themselves; a worker that dies (killed, out of memory) is replaced, the files it had in
  flight are retried one at a time, and a file that kills a worker again is reported as bad.

Every finished entry is published atomically the moment it is computed, so an interrupted run
loses at most the batch in flight. Nothing here knows about manifests or rows: it maps distinct
audio contents (:class:`Item`) to :class:`Outcome` callbacks.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairser.audio import load_audio
from fairser.errors import AudioError, FairserError, FeatureError
from fairser.features.base import Frontend
from fairser.features.store import FeatureStore

__all__ = ["Item", "Outcome", "make_batches", "run_in_process", "run_pool", "torch_threads"]


@dataclass
class Item:
    """One distinct audio content to compute."""

    audio_hash: str
    path: str
    duration_s: float
    rows: list[int] = field(default_factory=list)


@dataclass
class Outcome:
    """What happened to one :class:`Item`: stored, or failed with a reason."""

    audio_hash: str
    ok: bool
    reason: str = ""
    cache_failure: bool = False
    audio_s: float = 0.0


def _load(fe: Frontend, item: Item) -> np.ndarray:
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


def _compute_and_store(fe: Frontend, store: FeatureStore, items: list[Item],
                       signals: list[np.ndarray]) -> list[Outcome]:
    """Run ``fe`` on a batch and publish each entry; a failing batch is retried item by item."""
    try:
        feats = fe.compute(signals)
    except Exception as exc:  # noqa: BLE001 - reported per file, the run goes on
        if len(items) > 1:
            out: list[Outcome] = []
            for it, sig in zip(items, signals, strict=True):
                out.extend(_compute_and_store(fe, store, [it], [sig]))
            return out
        deterministic = isinstance(exc, FairserError)
        return [Outcome(items[0].audio_hash, False, f"{fe.name} failed: {_short(exc)}",
                         cache_failure=deterministic)]
    out = []
    for it, sig, arr in zip(items, signals, feats, strict=True):
        try:
            store.put(it.audio_hash, arr)
        except FeatureError as exc:
            out.append(Outcome(it.audio_hash, False, f"{it.path}: {exc}", cache_failure=True))
            continue
        out.append(Outcome(it.audio_hash, True, audio_s=len(sig) / fe.sample_rate))
    return out


def make_batches(items: list[Item], *, batched: bool, batch_seconds: float,
                 max_items: int = 64) -> list[list[Item]]:
    """Length-sorted groups whose padded audio stays under ``batch_seconds``."""
    ordered = sorted(items, key=lambda it: (it.duration_s, it.path))
    if not batched:
        return [[it] for it in ordered]
    out: list[list[Item]] = []
    cur: list[Item] = []
    for it in ordered:
        longest = max(it.duration_s, cur[-1].duration_s if cur else 0.0)
        if cur and (longest * (len(cur) + 1) > batch_seconds or len(cur) >= max_items):
            out.append(cur)
            cur = []
        cur.append(it)
    if cur:
        out.append(cur)
    return out


def _load_batch(fe: Frontend, batch: list[Item]) -> tuple[list[tuple[Item, np.ndarray]],
                                                          list[Outcome]]:
    good, bad = [], []
    for it in batch:
        try:
            good.append((it, _load(fe, it)))
        except AudioError as exc:
            bad.append(Outcome(it.audio_hash, False, str(exc), cache_failure=True))
        except Exception as exc:  # noqa: BLE001 - reported per file, the run goes on
            bad.append(Outcome(it.audio_hash, False, f"{it.path}: {_short(exc)}"))
    return good, bad


def run_in_process(fe: Frontend, store: FeatureStore, items: list[Item], *,
                   batch_seconds: float, on_outcome: Callable[[Outcome], None]) -> None:
    groups = make_batches(items, batched=fe.batched, batch_seconds=batch_seconds)
    if not groups:
        return
    fe.load()

    def handle(good: list[tuple[Item, np.ndarray]], bad: list[Outcome]) -> None:
        for outcome in bad:
            on_outcome(outcome)
        if good:
            for outcome in _compute_and_store(fe, store, [g[0] for g in good],
                                              [g[1] for g in good]):
                on_outcome(outcome)

    if not fe.batched:
        # Per-file frontends: decode inline. A loader thread would fight openSMILE's per-frame
        # Python callbacks for the GIL (5 ms switch interval) and cost more than decoding does.
        for batch in groups:
            handle(*_load_batch(fe, batch))
        return
    # Neural batches: torch releases the GIL, so the next batches decode in the background.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairser-audio") as loader:
        queue: deque[Future] = deque()
        todo = iter(groups)
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


def _worker_task(item: Item) -> Outcome:
    fe: Frontend = _WORKER_STATE["fe"]
    store: FeatureStore = _WORKER_STATE["store"]
    good, bad = _load_batch(fe, [item])
    if bad:
        return bad[0]
    fe.load()
    return _compute_and_store(fe, store, [item], [good[0][1]])[0]


def run_pool(fe: Frontend, store: FeatureStore, items: list[Item], *, workers: int,
             on_outcome: Callable[[Outcome], None]) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch/OpenMP init can deadlock
    pending: deque[Item] = deque(sorted(items, key=lambda it: -it.duration_s))
    suspects: deque[Item] = deque()
    while pending or suspects:
        isolate = not pending  # suspects run one at a time to pin down a crashing file
        source = pending if pending else suspects
        limit = 1 if isolate else workers * 3
        in_flight: dict[Future, Item] = {}
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
                    on_outcome(Outcome(it.audio_hash, False,
                                        f"{it.path}: a worker process died computing it "
                                        f"(killed or out of memory); check the file"))
            else:
                suspects.extend(lost)



@contextmanager
def torch_threads(n: int | None, *, batched: bool) -> Iterator[None]:
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
