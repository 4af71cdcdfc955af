"""Planning before spending: the size of a grid, its feature store and a fit's peak memory.

``fairser run --dry-run`` prints these for a config (docs/grids.md gives the formulas and the
figures for configs/paper/*). Everything is computed from the manifests (durations), the
frontend's shape (frame rate, width, layers kept, storage dtype) and the training options; no
audio is read and nothing is trained.

Feature store (per frontend configuration)::

    T_i   = ceil(duration_i * frame_rate)         (1 for utterance-level functionals)
    entry = 128 + T_i * L * D * bytes(dtype)     (npy header + data), rounded up to 4 KiB blocks
    store = sum of entries over the distinct utterances of the source and every target

Peak memory of one network fit (float32; the training layer streams batches from the store,
so no term grows with the number of rows)::

    T'       = min(max_frames, ceil(T_max / frame_stride))    T_max: longest clip's frames
    input    = 3 * B * L * T' * D * 4                         a training batch: float32 copy,
                                                              standardised, after dropout
    acts     = n_layers * B * T' * (8 * d_model + 2 * ff_dim) * 4
               + n_layers * B * n_heads * T'^2 * 4 * 2        attention weights
               + B * T' * d_model * 4 * 4                     projection and pooling
    train    = 2 * (input + acts)                             saved for backward + gradients
    evaluate = 3 * B_eval * L * T' * D * 4                    a prediction batch (no gradients)
    params   = P * 4 * 4                                      weights, grads, Adam m and v
    P        = L + D*d + d + n_layers*(4d^2 + 2d*ff + 9d + ff) + p*E + E + E*C + C
               (+ E*G + 3G + 2 with a gender head)     d = d_model, E = embed_dim, G = gc_hidden
               p = d (2d with attentive_stats pooling); embed_dim 0: no p*E + E term, E = p
    overhead = 90 MB                                          torch's training machinery
                                                              (measured, see below)
    workers  = num_workers * (loaders * 40 MB + 2 * max(B, B_eval) * L * T' * D * bytes(dtype))
               loaders: 2 (train, dev), 3 with selection: target-parity; each keeps its
               num_workers processes for the whole fit, but one loader is iterated at a time,
               its workers holding 2 prepared batches each (in the store's dtype)
    peak     = max(train, evaluate) + params + overhead + workers   (on top of the
                                                              Python/torch process before
                                                              the fit)

``B`` is ``batch_size``, ``B_eval`` ``eval_batch_size``. Checked on RAVDESS -> CASIA (whisper-base
layer 2, pa-adv, 1360 rows, T' = 64), as the growth of the process's anonymous resident memory
during ``fit`` (sampled every 20 ms): B 64 / B_eval 256: 192 MB estimated, 198 MB measured;
B 64 / B_eval 32: 192 MB, 190 MB; B 8 / B_eval 32: 104 MB, 101 MB (the 90 MB overhead is the
intercept of these runs). The store: 210.0 MB estimated, 209.4 MB on disk. Pages of the store
read by a fit are cached by the OS and count in its RSS, but are reclaimable. A DataLoader
worker is a forked process: 37 MB of private memory each after 20 batches (Python 3.11, fork;
measured in ``/proc/PID/smaps_rollup``; its RSS, 294 MB, is mostly pages shared with the
fit's process), rounded up to :data:`WORKER_OVERHEAD`, plus the ``prefetch_factor`` (2)
batches it holds. Copy-on-write can grow a worker's share over a long fit; that is not
estimated.

Peak memory of one linear-baseline fit (:mod:`fairser.experiments.baseline`). It is **not**
streamed: it mean-pools every source train row into memory, so it grows with the rows. With
``W = L * D`` float32 values per pooled row and ``n_t`` source train, ``n_s`` source test,
``n_a`` target adaptation and ``n_e`` target evaluation rows (counted from the manifests;
``n_e`` is every target row not adapted on, an upper bound)::

    fit      = 12 * n_t * W    pooled rows, their centred temporary and the z-scored copy
                               (scikit-learn 1.9's lbfgs keeps float32: no float64 copy)
    evaluate = 8 * n_t * W     pooled and z-scored train rows stay alive while scoring, plus
               + W * max(12 * n_s,                    the source test rows, normed
                         4 * n_s + 8 * n_e,           pooling the target rows
                         target)
    target   = 4 * max(2 * (n_e + n_a), 3 * n_e + n_a)   per-corpus: the adaptation rows'
               statistics (their pooled copy and std's temporary)
             = 12 * n_e                                  other norms
    peak     = max(fit, evaluate)

(the factor 4 of float32 is inside the coefficients). Measured with ``tracemalloc`` on the
same steps (6000 train, 6000 adaptation and 1500 evaluation rows, W = 3584): 12.0 and 18.0
bytes per ``n_t * W`` for the fit and the target's evaluation, as the formulas give.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TRAINING_OVERHEAD", "WORKER_OVERHEAD", "BaselineMemory", "FitMemory",
           "FrontendShape", "baseline_memory", "fit_estimates", "fit_memory", "fit_rows",
           "human_bytes", "store_bytes"]

_NPY_HEADER = 128
_BLOCK = 4096
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


@dataclass(frozen=True)
class FrontendShape:
    """What the estimates need to know about a frontend configuration.

    Attributes
    ----------
    name : str
        Frontend name.
    frame_rate : float
        Frames per second (0 for utterance-level functionals: one frame per clip).
    dim : int
        Feature width ``D``.
    n_layers : int
        Layers kept ``L``.
    dtype : str
        Storage dtype (``float16`` by default).
    """

    name: str
    frame_rate: float
    dim: int
    n_layers: int
    dtype: str = "float16"

    def frames(self, duration_s: np.ndarray) -> np.ndarray:
        """Frames per clip: ``ceil(duration * frame_rate)``, at least 1."""
        d = np.nan_to_num(np.asarray(duration_s, dtype=float), nan=0.0)
        if self.frame_rate <= 0:
            return np.ones(len(d), dtype=np.int64)
        return np.maximum(1, np.ceil(d * self.frame_rate)).astype(np.int64)


def store_bytes(durations: np.ndarray, shape: FrontendShape) -> int:
    """Bytes the feature store needs for clips of ``durations`` seconds (see the module doc)."""
    per_value = _DTYPE_BYTES.get(shape.dtype, 4) * shape.n_layers * shape.dim
    entry = _NPY_HEADER + shape.frames(durations) * per_value
    return int((np.ceil(entry / _BLOCK) * _BLOCK).sum())


#: Memory torch's training machinery adds to a process (measured intercept, see above).
TRAINING_OVERHEAD = 90_000_000
#: Private memory of one forked DataLoader worker besides its batches (37 MB measured).
WORKER_OVERHEAD = 40_000_000
#: Batches a DataLoader worker prepares ahead (torch's ``prefetch_factor`` default).
PREFETCH = 2


@dataclass(frozen=True)
class FitMemory:
    """Peak memory of one fit, by term (bytes; see the module docstring).

    Attributes
    ----------
    train : int
        A training step: ``2 * (input + acts)``.
    evaluate : int
        A prediction batch.
    params : int
        Parameters, gradients and optimiser state.
    overhead : int
        torch's training machinery.
    workers : int
        The DataLoader worker processes of every loader of the fit (0 without workers).
    frames : int
        ``T'``, frames per clip after striding and the cap.
    rows : int
        Rows the fit reads (source train + dev and the target's adaptation rows); no term
        grows with them.
    """

    train: int
    evaluate: int
    params: int
    overhead: int
    frames: int
    rows: int
    workers: int = 0

    @property
    def total(self) -> int:
        """``max(train, evaluate) + params + overhead + workers``."""
        return max(self.train, self.evaluate) + self.params + self.overhead + self.workers


@dataclass(frozen=True)
class BaselineMemory:
    """Peak memory of one linear-baseline fit, by phase (bytes; see the module docstring).

    Attributes
    ----------
    fit : int
        Pooling, z-scoring and fitting the source train rows.
    evaluate : int
        Scoring the source test and the target's evaluation rows.
    rows : int
        Source train rows ``n_t`` (both phases grow with them).
    width : int
        ``W = L * D``, float32 values per pooled row.
    """

    fit: int
    evaluate: int
    rows: int
    width: int

    @property
    def total(self) -> int:
        """``max(fit, evaluate)``."""
        return max(self.fit, self.evaluate)


def _option(options: Any, name: str, default: Any) -> Any:
    if isinstance(options, Mapping):
        return options.get(name, default)
    return getattr(options, name, default)


def _param_count(shape: FrontendShape, model: Any, n_classes: int, adversarial: bool) -> int:
    d = int(_option(model, "d_model", 64))
    ff = int(_option(model, "ff_dim", 128))
    n = int(_option(model, "n_layers", 1))
    emb = int(_option(model, "embed_dim", 64))
    gc = int(_option(model, "gc_hidden", 64))
    count = shape.n_layers + shape.dim * d + d  # layer weighting, projection D -> d_model
    count += n * (4 * d * d + 4 * d + 2 * d * ff + ff + d + 4 * d)  # attention, FF, norms
    pooled = d * (2 if _option(model, "pooling", "mean") == "attentive_stats" else 1)
    if emb:
        count += pooled * emb + emb  # embedding layer
    else:  # no embedding layer: the heads read the pooled vector
        emb = pooled
    count += emb * n_classes + n_classes  # emotion head
    if adversarial:
        count += emb * gc + gc + gc * 2 + 2
    return count


def fit_memory(*, rows: int, longest_s: float, shape: FrontendShape, options: Any,
               n_classes: int = 1, adversarial: bool = True) -> FitMemory:
    """Peak memory of one fit (see the module docstring for the formula).

    Parameters
    ----------
    rows : int
        Rows the fit reads: source train + dev and the target's adaptation rows.
    longest_s : float
        Longest clip among them, in seconds.
    shape : FrontendShape
        The frontend configuration.
    options : TrainConfig or mapping
        Training options (``batch_size``, ``eval_batch_size``, ``frame_stride``,
        ``max_frames``, ``model``, ``num_workers``, ``selection``).
    n_classes : int, default 1
        Width of the emotion head (1 for binary).
    adversarial : bool, default True
        Whether the method has a gender head.
    """
    batch_size = int(_option(options, "batch_size", 64))
    eval_batch = int(_option(options, "eval_batch_size", 256))
    stride = int(_option(options, "frame_stride", 4))
    cap = int(_option(options, "max_frames", 96))
    model = _option(options, "model", {})
    t_max = int(shape.frames(np.array([longest_s]))[0])
    frames = max(1, min(cap, math.ceil(t_max / stride)))
    width = shape.n_layers * shape.dim
    d = int(_option(model, "d_model", 64))
    ff = int(_option(model, "ff_dim", 128))
    heads = int(_option(model, "n_heads", 4))
    n = int(_option(model, "n_layers", 1))
    inputs = 3 * batch_size * frames * width * 4
    acts = (n * batch_size * frames * (8 * d + 2 * ff) * 4
            + n * batch_size * heads * frames * frames * 4 * 2
            + batch_size * frames * d * 4 * 4)
    n_workers = int(_option(options, "num_workers", 0) or 0)
    loaders = 3 if _option(options, "selection", None) == "target-parity" else 2
    batch = max(batch_size, eval_batch) * frames * width * _DTYPE_BYTES.get(shape.dtype, 4)
    workers = n_workers * (loaders * WORKER_OVERHEAD + PREFETCH * batch)
    return FitMemory(train=2 * (inputs + acts), evaluate=3 * eval_batch * frames * width * 4,
                     params=_param_count(shape, model, n_classes, adversarial) * 4 * 4,
                     overhead=TRAINING_OVERHEAD, frames=frames, rows=rows, workers=workers)


def baseline_memory(*, train_rows: int, test_rows: int, adapt_rows: int, eval_rows: int,
                    width: int, norm: str = "per-corpus") -> BaselineMemory:
    """Peak memory of one linear-baseline fit (see the module docstring for the formula).

    Parameters
    ----------
    train_rows, test_rows : int
        Source train rows ``n_t`` and source test rows ``n_s``.
    adapt_rows, eval_rows : int
        The target's adaptation rows ``n_a`` and evaluation rows ``n_e``.
    width : int
        ``L * D``: values per mean-pooled row.
    norm : str, default "per-corpus"
        ``linear_baseline_norm`` (``per-corpus`` pools the adaptation rows for their
        statistics when scoring the target).
    """
    row = 4 * width  # one pooled float32 row
    n_t, n_s, n_a, n_e = train_rows, test_rows, adapt_rows, eval_rows
    target = (max(8 * (n_e + n_a), 12 * n_e + 4 * n_a) if norm == "per-corpus"
              else 12 * n_e)
    scoring = max(12 * n_s, 4 * n_s + 8 * n_e, target)
    return BaselineMemory(fit=3 * n_t * row, evaluate=(2 * n_t * row + scoring * width),
                          rows=n_t, width=width)


def fit_rows(source: pd.DataFrame, adapt: pd.DataFrame) -> tuple[int, float]:
    """``(rows, longest clip in s)`` a fit reads: source train + dev and the adaptation rows."""
    split = source["split"].astype("string")
    used = source[split.isin(["train", "dev"]).fillna(False).to_numpy(dtype=bool)]
    durations = pd.concat([used["duration_s"], adapt["duration_s"]], ignore_index=True)
    longest = float(np.nanmax(durations.to_numpy(dtype=float))) if len(durations) else 0.0
    return len(used) + len(adapt), longest


def fit_estimates(*, source: pd.DataFrame, adapt: Mapping[str, pd.DataFrame],
                  eval_rows: Mapping[str, int], shape: FrontendShape, options: Any,
                  n_classes: int = 1, norm: str = "per-corpus", adversarial: bool = True,
                  baselines: bool = True) -> tuple[FitMemory | None, BaselineMemory | None]:
    """``(largest network fit, largest linear-baseline fit)`` over the targets of a grid.

    Parameters
    ----------
    source : DataFrame
        Source rows with their ``split`` and ``duration_s``.
    adapt : mapping of str to DataFrame
        Per target: its adaptation rows (``duration_s``).
    eval_rows : mapping of str to int
        Per target: its evaluation rows ``n_e``.
    shape : FrontendShape
        The frontend configuration.
    options : TrainConfig or mapping
        Training options (see :func:`fit_memory`).
    n_classes : int, default 1
        Width of the emotion head.
    norm : str, default "per-corpus"
        ``linear_baseline_norm``.
    adversarial : bool, default True
        Whether the network fits have a gender head.
    baselines : bool, default True
        Whether the grid fits linear baselines (else the second is None).
    """
    split = source["split"].astype("string")
    n_train, n_test = int((split == "train").sum()), int((split == "test").sum())
    worst: FitMemory | None = None
    floor: BaselineMemory | None = None
    for label, rows in adapt.items():
        n, longest = fit_rows(source, rows)
        mem = fit_memory(rows=n, longest_s=longest, shape=shape, options=options,
                         n_classes=n_classes, adversarial=adversarial)
        worst = mem if worst is None or mem.total > worst.total else worst
        if baselines:
            lin = baseline_memory(train_rows=n_train, test_rows=n_test, adapt_rows=len(rows),
                                  eval_rows=eval_rows[label], width=shape.n_layers * shape.dim,
                                  norm=norm)
            floor = lin if floor is None or lin.total > floor.total else floor
    return worst, floor


def human_bytes(n: float) -> str:
    """``1.2 GB`` style (powers of 1000; ``MiB`` would be 4.9 % smaller)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
