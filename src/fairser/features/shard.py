"""One extraction split over processes, GPUs and machines: shard ``K`` of ``N`` of a manifest.

A row belongs to shard ``int(config_hash(utt_key)[:16], 16) % N``: a function of the utterance
key alone, so every process on every machine computes the same partition of the same manifest,
whatever the row order, with no coordination. Shards are **0-based** (``0/N`` .. ``N-1/N``), the
numbering of torchrun's ``RANK``. Each shard writes into the one content-addressed store (atomic
publishes; the file name is the content hash), so shards need nothing beyond a shared cache
folder; a plain extraction afterwards finds what is missing and computes it.

Launched by ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set, ``WORLD_SIZE > 1``), ``fairser features
extract`` takes its shard from the environment (:func:`shard_from_env`); :func:`fairser.features.
extract` itself never reads the environment, so the ranks of a DDP training run that call it get
the whole manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from fairser._hashing import config_hash
from fairser.errors import ConfigError

__all__ = ["check_shard", "device_for_rank", "parse_shard", "shard_from_env", "shard_mask",
           "shard_of"]

Shard = tuple[int, int]


def _bad(text: str) -> ConfigError:
    return ConfigError(f"--shard {text}: expected K/N with 0 <= K < N (0-based, like torchrun's "
                       f"RANK), e.g. 0/4 .. 3/4")


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> ``(K, N)``; a one-line :class:`ConfigError` when malformed or out of range."""
    k, sep, n = str(text).strip().partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        raise _bad(text) from None
    if not sep or not 0 <= shard[0] < shard[1]:
        raise _bad(text)
    return shard


def check_shard(shard: Any) -> Shard | None:
    """A valid ``(K, N)`` from ``None``, ``"K/N"`` or a pair (one-line error otherwise)."""
    if shard is None:
        return None
    if isinstance(shard, str):
        return parse_shard(shard)
    try:
        k, n = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise _bad(repr(shard)) from None
    if not 0 <= k < n:
        raise _bad(f"{k}/{n}")
    return k, n


def shard_of(key: str, n: int) -> int:
    """The shard (``0 .. n-1``) of an utterance key: stable across processes and machines."""
    return int(config_hash(key)[:16], 16) % n


def shard_mask(keys: Iterable[str], shard: Shard) -> np.ndarray:
    """Boolean mask of the keys that belong to ``shard``."""
    k, n = shard
    return np.fromiter((shard_of(key, n) == k for key in keys), dtype=bool)


def shard_from_env(environ: Mapping[str, str] | None = None) -> Shard | None:
    """``(RANK, WORLD_SIZE)`` when started by torchrun with more than one process, else None.

    Raises
    ------
    ConfigError
        ``RANK`` or ``WORLD_SIZE`` is set but not a valid pair.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    except ValueError:
        raise ConfigError(f"RANK={env['RANK']!r} WORLD_SIZE={env['WORLD_SIZE']!r}: not "
                          f"integers; launch with torchrun or pass --shard K/N") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world}); "
                          f"launch with torchrun or pass --shard K/N")
    return rank, world


def device_for_rank(device: str, environ: Mapping[str, str] | None = None, *,
                    n_cuda: int) -> str:
    """``cuda:<LOCAL_RANK mod n_cuda>`` for ``device="auto"`` under torchrun with CUDA devices.

    So that the processes of one machine spread over its GPUs instead of all using ``cuda:0``;
    any other choice (or no ``LOCAL_RANK``, or no CUDA device) is returned unchanged.
    """
    env = os.environ if environ is None else environ
    if device != "auto" or n_cuda < 1 or "LOCAL_RANK" not in env:
        return device
    try:
        return f"cuda:{int(env['LOCAL_RANK']) % n_cuda}"
    except ValueError:
        raise ConfigError(f"LOCAL_RANK={env['LOCAL_RANK']!r} is not an integer; launch with "
                          f"torchrun or pass --device") from None
