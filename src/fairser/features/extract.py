"""``extract()``: manifest -> features in the store, computing only what is missing or damaged.

Flow: check the manifest, hash the audio (hash cache), look every row up in the store (an entry
that fails the checks of :mod:`fairser.features.entry` counts as damaged, not cached), compute
the missing and damaged distinct audio contents (:mod:`fairser.features._compute`), publish each
entry atomically, return a :class:`~fairser.features.featureset.FeatureSet`.

Every finished entry is on disk the moment it is published, so an interrupted run (Ctrl-C,
SIGKILL, power loss of the process) loses at most the batch in flight; the next call resumes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairser.audio import audio_info
from fairser.corpora import utt_key
from fairser.errors import AudioError, FeatureError
from fairser.features._compute import Item, Outcome, run_in_process, run_pool, torch_threads
from fairser.features._progress import HashProgress, Reporter, make_console, summary
from fairser.features.base import Frontend, LayerSpec, Runtime
from fairser.features.entry import MISSING
from fairser.features.featureset import BAD_COLUMNS, DAMAGED_COLUMNS, ExtractStats, FeatureSet
from fairser.features.hashcache import HashCache
from fairser.features.registry import build_frontend
from fairser.features.shard import check_shard, device_for_rank, shard_mask
from fairser.features.store import FeatureStore, features_root

__all__ = ["extract"]

_REQUIRED = ("corpus", "utt_id", "path")


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



def _runtime(fe: Frontend, *, device: str, precision: str,
             batch_seconds: float | None) -> tuple[Runtime, dict[str, str]]:
    """The frontend's :class:`Runtime` and the device metadata recorded with the entries."""
    import torch

    from fairser.device import check_device_name, device_metadata, resolve_device
    from fairser.device import resolve_precision as plan_of

    check_device_name(device)
    if fe.accelerated:
        n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        dev = resolve_device(device_for_rank(device, n_cuda=n_cuda))
        plan = plan_of(precision, dev)
    else:  # per-file frontends compute on the CPU in float32, whatever was asked
        dev = torch.device("cpu")
        plan = plan_of("fp32", dev)
        plan_of(precision, dev)  # still reject an unknown precision
    if batch_seconds is None:
        batch_seconds = 60.0 if dev.type == "cpu" else 600.0
    if not batch_seconds > 0:
        raise FeatureError(f"batch_seconds={batch_seconds} must be positive (padded audio "
                           f"seconds per batch, e.g. 60)")
    meta = {**device_metadata(dev, plan), "precision_requested": precision}
    return Runtime(str(dev), plan.effective, float(batch_seconds)), meta


@dataclass
class _Plan:
    """Where every row stands after looking it up in the store."""

    entries: dict[str, Path] = field(default_factory=dict)
    selections: dict[str, tuple[int, ...]] = field(default_factory=dict)
    bad_rows: dict[int, str] = field(default_factory=dict)
    todo: dict[str, Item] = field(default_factory=dict)
    damaged: list[tuple[int, Path, str, str]] = field(default_factory=list)  # row, file, why, hash
    n_cached: int = 0


def _scan(df: pd.DataFrame, hashes: dict[str, Any], store: FeatureStore,
          superset: FeatureStore | None, layers: tuple[int, ...], *, verify: bool,
          retry_bad: bool) -> _Plan:
    """Look every row up: served from the store, recorded as bad, or to compute."""
    plan = _Plan()
    state: dict[str, tuple[str, Path | None]] = {}  # audio hash -> (status, entry)
    for i, (key, path, dur) in enumerate(zip(df["key"], df["path"], df["duration_s"],
                                             strict=True)):
        h = hashes[path]
        if isinstance(h, FeatureError):
            plan.bad_rows[i] = str(h)
            continue
        if h in plan.todo:
            plan.todo[h].rows.append(i)
            continue
        if h not in state:
            state[h] = _lookup(h, store, superset, verify=verify, retry_bad=retry_bad)
        status, entry = state[h]
        if status == "ok":
            plan.entries[key] = entry
            plan.n_cached += 1
        elif status == "superset":
            plan.entries[key] = entry
            plan.selections[key] = layers
            plan.n_cached += 1
        elif status.startswith("bad:"):
            plan.bad_rows[i] = status[4:]
        else:
            if status.startswith("damaged:"):
                plan.damaged.append((i, entry, status[8:], h))
            plan.todo[h] = Item(h, path, float(dur), [i])
    return plan


def _lookup(h: str, store: FeatureStore, superset: FeatureStore | None, *, verify: bool,
            retry_bad: bool) -> tuple[str, Path | None]:
    """``ok``, ``superset``, ``bad:<reason>``, ``damaged:<reason>`` or ``missing``."""
    problem = store.problem(h, full=verify)
    if problem is None:
        return "ok", store.path(h)
    if superset is not None and superset.problem(h, full=verify) is None:
        return "superset", superset.path(h)
    if problem != MISSING:
        return f"damaged:{problem}", store.path(h)
    if retry_bad:
        store.clear_error(h)
    else:
        reason = store.error(h)
        if reason is not None:
            return f"bad:{reason}", None
    return "missing", None

def extract(manifest: pd.DataFrame, frontend: str | Frontend, *, layers: LayerSpec = None,
            options: dict[str, Any] | None = None, cache_dir: str | Path | None = None,
            workers: int = 1, progress: bool = True, threads: int | None = None,
            dtype: str | None = None, device: str = "auto", precision: str = "fp32",
            batch_seconds: float | None = None, retry_bad: bool = False, verify: bool = False,
            check_only: bool = False, shard: str | tuple[int, int] | None = None) -> FeatureSet:
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
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, default="auto"
        Where neural frontends (Whisper, ``hf:``) compute; ``auto`` takes CUDA, then MPS, else
        the CPU (under torchrun: ``cuda:<LOCAL_RANK>``). Per-file frontends always use the CPU.
        Not part of the store key: fp32 entries from any device are shared.
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Compute precision of neural frontends (autocast; fp16 runs as fp32 on the CPU). Part
        of the store key, so fp32 and bf16 features never mix.
    batch_seconds : float, optional
        Padded audio seconds per neural batch (bounds peak memory); default 60 on the CPU,
        600 on an accelerator. Every utterance's features equal its unbatched ones to float
        rounding, whatever the batch.
    retry_bad : bool, default=False
        Recompute files whose failure was recorded by an earlier run.
    verify : bool, default=False
        Check every value of every entry of this manifest (not only the cheap checks every
        call makes; see :mod:`fairser.features.entry`); damaged entries are recomputed.
    check_only : bool, default=False
        Compute nothing: report missing rows (:attr:`FeatureSet.missing`) and damaged entries
        (:attr:`FeatureSet.damaged`) and serve what is intact.
    shard : "K/N" or (K, N), optional
        Extract only shard ``K`` (0-based) of ``N``: the rows whose utterance key hashes to
        ``K`` (:mod:`fairser.features.shard`); the returned set holds those rows only. Shards
        run in any processes or machines that share the cache folder.

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
    shard = check_shard(shard)
    if shard is not None:
        df = df[shard_mask(df["key"], shard)].reset_index(drop=True)
    if isinstance(frontend, Frontend):
        fe = frontend
        if layers is not None or options:
            raise FeatureError("layers/options are set on a Frontend instance, not in extract(); "
                               "pass a frontend name to use them")
    else:
        fe = build_frontend(frontend, layers=layers, options=options, cache_dir=cache_dir)
    runtime, device_meta = _runtime(fe, device=device, precision=precision,
                                    batch_seconds=batch_seconds)
    fe = fe.with_runtime(runtime)
    root = features_root(cache_dir)
    store_dtype = dtype or fe.store_dtype
    store = FeatureStore(root, fe.name, fe.config(), dtype=store_dtype,
                         n_layers=len(fe.layers), dim=fe.dim)
    if not check_only:
        store.open()
    console = make_console()
    # A layer subset is served from existing all-layer entries rather than recomputed.
    superset: FeatureStore | None = None
    if 1 < fe.n_layers != len(fe.layers):
        full = fe.with_layers("all")
        candidate = FeatureStore(root, full.name, full.config(), dtype=store_dtype,
                                 n_layers=full.n_layers, dim=full.dim)
        superset = candidate if candidate.folder.is_dir() else None

    hashing = HashProgress(enabled=progress, console=console)
    try:
        hashes = HashCache(root).hash_files(df["path"], on_start=hashing.on_start,
                                            on_hashed=hashing.on_hashed)
    finally:
        hashing.stop()
    plan = _scan(df, hashes, store, superset, fe.layers, verify=verify, retry_bad=retry_bad)
    for it in plan.todo.values():  # durations for batching and the audio-rate column
        if not math.isfinite(it.duration_s):
            try:
                it.duration_s = audio_info(it.path).duration_s
            except AudioError:
                it.duration_s = 0.0  # load_audio reports the problem with its reason

    missing: list[str] = []
    n_computed = 0
    audio_s = 0.0
    t_compute = time.perf_counter()
    if check_only:
        broken = {d[3] for d in plan.damaged}
        missing = [df.at[i, "key"] for h, it in plan.todo.items() if h not in broken
                   for i in it.rows]
    elif plan.todo:
        with Reporter(total=len(plan.todo), label=f"{fe.name}", enabled=progress,
                      console=console) as reporter:

            def on_outcome(outcome: Outcome) -> None:
                nonlocal n_computed
                item = plan.todo[outcome.audio_hash]
                if outcome.ok:
                    n_computed += 1
                    for i in item.rows:
                        plan.entries[df.at[i, "key"]] = store.path(item.audio_hash)
                        plan.selections.pop(df.at[i, "key"], None)
                else:
                    if outcome.cache_failure:
                        try:
                            store.put_error(item.audio_hash, outcome.reason)
                        except OSError:
                            pass
                    for i in item.rows:
                        plan.bad_rows[i] = outcome.reason
                reporter.advance(outcome.audio_s)

            items = list(plan.todo.values())
            if fe.batched or workers == 1 or len(items) == 1:
                with torch_threads(threads, batched=fe.batched):
                    run_in_process(fe, store, items, batch_seconds=runtime.batch_seconds,
                                   on_outcome=on_outcome)
            else:
                run_pool(fe, store, items, workers=workers, on_outcome=on_outcome)
            audio_s = reporter.audio_s
        if n_computed:
            store.record_run({"frontend": fe.name, "n_computed": n_computed,
                              "n_damaged": len(plan.damaged), "audio_s": round(audio_s, 3),
                              "shard": list(shard) if shard is not None else None,
                              "batch_seconds": runtime.batch_seconds, **device_meta})
    compute_s = time.perf_counter() - t_compute if plan.todo and not check_only else 0.0

    paths = df["path"].tolist()
    bad = pd.DataFrame(
        [(df.at[i, "corpus"], df.at[i, "utt_id"], paths[i], r) for i, r in sorted(
            plan.bad_rows.items())], columns=list(BAD_COLUMNS)).astype("string")
    damaged = pd.DataFrame(
        [(df.at[i, "corpus"], df.at[i, "utt_id"], str(entry), r) for i, entry, r, _ in
         plan.damaged], columns=list(DAMAGED_COLUMNS)).astype("string")
    ordered = {k: plan.entries[k] for k in df["key"] if k in plan.entries}
    stats = ExtractStats(n_rows=len(df), n_cached=plan.n_cached, n_computed=n_computed,
                         n_bad=len(bad), n_damaged=len(plan.damaged), n_missing=len(missing),
                         audio_s=audio_s, hashed=hashing.hashed,
                         wall_s=time.perf_counter() - t0, compute_s=compute_s,
                         shard=shard, check_only=check_only, verified=verify,
                         device=runtime.device, precision=runtime.precision)
    if progress:
        summary(console, name=fe.name, stats=stats, folder=store.folder)
    return FeatureSet(frontend=fe.name, layers=fe.layers, dim=fe.dim, frame_rate=fe.frame_rate,
                      entries=ordered, bad=bad, stats=stats, folder=store.folder,
                      config=store.config, selections=plan.selections, spec=store.spec,
                      superset_spec=superset.spec if superset is not None else None,
                      damaged=damaged, missing=tuple(missing))
