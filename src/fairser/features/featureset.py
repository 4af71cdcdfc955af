"""The result of an extraction: utterance key -> memory-mapped ``(L, T, D)`` float16 array.

Every read checks its entry first (header, size, shape, dtype and a sample of values; see
:mod:`fairser.features.entry`), so a file damaged after extraction is reported as a one-line
:class:`~fairser.errors.FeatureError` naming it and the fix, never served as wrong numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fairser.features.entry import EntrySpec, damaged_error, entry_shape, read_entry

__all__ = ["FeatureSet", "ExtractStats", "BAD_COLUMNS", "DAMAGED_COLUMNS"]

#: Columns of :attr:`FeatureSet.bad`.
BAD_COLUMNS: tuple[str, ...] = ("corpus", "utt_id", "path", "reason")
#: Columns of :attr:`FeatureSet.damaged`.
DAMAGED_COLUMNS: tuple[str, ...] = ("corpus", "utt_id", "entry", "reason")


@dataclass(frozen=True)
class ExtractStats:
    """What one :func:`fairser.features.extract` call did.

    Attributes
    ----------
    n_rows : int
        Manifest rows.
    n_cached : int
        Rows already in the store (nothing computed).
    n_computed : int
        Distinct audio contents computed in this call (rows with byte-identical audio share
        one computation and one entry).
    n_bad : int
        Rows without features (see :attr:`FeatureSet.bad`).
    n_damaged : int
        Distinct entries found damaged (empty, truncated, wrong shape or dtype, non-finite
        values); recomputed, unless ``check_only``.
    n_missing : int
        Rows left without features because nothing was computed (``check_only``).
    audio_s : float
        Seconds of audio computed in this call.
    hashed : int
        Audio files whose bytes were read for hashing (the others came from the hash cache).
    wall_s : float
        Wall-clock seconds of the call.
    compute_s : float
        Seconds spent computing (loading audio, frontend, writing entries).
    shard : tuple of (int, int) or None
        ``(K, N)`` when the call extracted shard ``K`` of ``N`` only (0-based ``K``).
    check_only : bool
        The call only checked the store (nothing computed).
    verified : bool
        Every value of every entry was checked (``verify=True``).
    device, precision : str
        Where and in which precision entries were (or would be) computed (``cpu`` and
        ``fp32`` for per-file frontends).
    """

    n_rows: int = 0
    n_cached: int = 0
    n_computed: int = 0
    n_bad: int = 0
    n_damaged: int = 0
    n_missing: int = 0
    audio_s: float = 0.0
    hashed: int = 0
    wall_s: float = 0.0
    compute_s: float = 0.0
    shard: tuple[int, int] | None = None
    check_only: bool = False
    verified: bool = False
    device: str = "cpu"
    precision: str = "fp32"

    @property
    def rtf(self) -> float:
        """Real-time factor of the computation (compute seconds per audio second)."""
        return self.compute_s / self.audio_s if self.audio_s else 0.0


class FeatureSet(Mapping[str, np.ndarray]):
    """Features of a manifest, read lazily from the store.

    ``fs[utt_key]`` returns a read-only memory-mapped ``(L, T, D)`` array (float16 by default):
    only the pages touched are read, and any number of DataLoader workers can share the set
    (it pickles as a table of paths). A layer subset found in an existing all-layer entry is
    served from it (a view for contiguous layers, a copy otherwise) instead of being recomputed.

    Attributes
    ----------
    frontend : str
        Frontend name.
    layers : tuple of int
        Kept layer indices (in the frontend's numbering).
    n_layers : int
        ``L``, the number of kept layers.
    dim : int
        ``D``.
    frame_rate : float
        Frames per second (``0.0`` for utterance-level functionals, where ``T = 1``).
    bad : pandas.DataFrame
        Rows without features: ``corpus, utt_id, path, reason``.
    stats : ExtractStats
        What the extraction call did.
    folder : Path
        Store folder of this frontend configuration.
    damaged : pandas.DataFrame
        Entries found damaged by the extraction: ``corpus, utt_id, entry, reason`` (recomputed
        unless the call was ``check_only``).
    missing : tuple of str
        Keys left without features by a ``check_only`` call (not computed yet).
    """

    def __init__(self, *, frontend: str, layers: tuple[int, ...], dim: int, frame_rate: float,
                 entries: Mapping[str, Path], bad: pd.DataFrame, stats: ExtractStats,
                 folder: Path, config: Mapping[str, object] | None = None,
                 selections: Mapping[str, tuple[int, ...]] | None = None,
                 spec: EntrySpec | None = None, superset_spec: EntrySpec | None = None,
                 damaged: pd.DataFrame | None = None,
                 missing: tuple[str, ...] = ()) -> None:
        self.frontend = frontend
        self.layers = tuple(layers)
        self.n_layers = len(self.layers)
        self.dim = int(dim)
        self.frame_rate = float(frame_rate)
        self._entries = dict(entries)
        # key -> layer indices to take from an all-layer entry (served instead of recomputing)
        self._selections = {k: tuple(v) for k, v in (selections or {}).items()}
        self.bad = bad.reset_index(drop=True)
        self.stats = stats
        self.folder = Path(folder)
        self._config = dict(config or {})
        self._spec = spec  # what entries of the store look like (checked on every read)
        self._superset_spec = superset_spec  # the same for all-layer entries (selections)
        self.damaged = (damaged if damaged is not None else pd.DataFrame(
            columns=list(DAMAGED_COLUMNS))).reset_index(drop=True)
        self.missing = tuple(missing)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            path = self._entries[key]
        except KeyError:
            reason = self._bad_reason(key)
            hint = f" ({reason})" if reason else "; is it in the manifest given to extract()?"
            raise KeyError(f"{key}: no features{hint}") from None
        sel = self._selections.get(key)
        arr = read_entry(path, self._spec if sel is None else self._superset_spec)
        if sel is None:
            return arr
        if sel == tuple(range(sel[0], sel[-1] + 1)):
            return arr[sel[0]:sel[-1] + 1]  # contiguous layers: still a memory-mapped view
        return np.ascontiguousarray(arr[list(sel)])

    def _bad_reason(self, key: str) -> str | None:
        if self.bad.empty:
            return None
        keys = self.bad["corpus"].astype(str) + "/" + self.bad["utt_id"].astype(str)
        hit = self.bad.loc[keys == key, "reason"]
        return None if hit.empty else str(hit.iloc[0])

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def config(self) -> dict[str, object]:
        """The frontend configuration hashed into the store folder (a copy)."""
        return dict(self._config)

    def path(self, key: str) -> Path:
        """Store file of ``key`` (an all-layer entry when a layer subset is served from it)."""
        return self._entries[key]

    def shape(self, key: str) -> tuple[int, int, int]:
        """``(L, T, D)`` of ``key`` from the file header (no data read)."""
        shape = entry_shape(self._entries[key])
        if len(shape) != 3:
            raise damaged_error(self._entries[key], f"shape {shape} is not (L, T, D)")
        n_layers = len(self._selections[key]) if key in self._selections else shape[0]
        return n_layers, shape[1], shape[2]

    def n_frames(self, key: str) -> int:
        """``T`` of ``key`` (header only)."""
        return self.shape(key)[1]

    def __repr__(self) -> str:
        return (f"FeatureSet(frontend={self.frontend!r}, n={len(self)}, layers={self.layers}, "
                f"dim={self.dim}, frame_rate={self.frame_rate}, bad={len(self.bad)})")
