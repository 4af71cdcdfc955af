"""Average pooling of one row's frames over time, the first step of reading a row.

:func:`pool_time` pools ``(L, T, D)`` features by ``frame_stride`` frames and keeps the centred
``max_frames``; it is what :class:`~fairser.training.rows.RowReader` and the anchors apply to
every row, in training and prediction alike.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pool_time"]


def _mean_in_order(win: np.ndarray) -> np.ndarray:
    """(L, n, k, D) float32 -> (L, n, D): each window's k frames summed in order, divided by k.

    Explicit adds: a reduction may reorder the additions (its result then differs in the last
    bit from the stacked implementation's). numpy, not torch: the same IEEE float32 adds at a
    fraction of torch's per-call cost on these small arrays.
    """
    k = win.shape[2]
    if k == 1:
        return win[:, :, 0].copy()
    acc = win[:, :, 0] + win[:, :, 1]
    for j in range(2, k):
        acc += win[:, :, j]
    acc /= np.float32(k)
    return acc


def pool_time(
    a: np.ndarray, stride: int, max_frames: int | None = None, *, half: bool = False
) -> np.ndarray:
    """Average-pool (L, T, D) over time (kernel = stride = ``stride``, last window partial),
    then keep the centred ``max_frames`` pooled frames.

    Only the raw frames of the kept windows are read. Each window is summed in frame order and
    divided by its frame count, in float32; the result is float32, or rounded to float16 when
    ``half``.

    Raises
    ------
    ValueError
        When a pooled value is NaN or infinite.
    """
    L, T, D = a.shape
    if stride == 1 or T <= 1:
        stride = 1
    pooled = -(-T // stride)
    keep = pooled if max_frames is None else min(pooled, max_frames)
    start = (pooled - keep) // 2
    raw = np.array(a[:, start * stride : min(T, (start + keep) * stride)])  # the kept frames
    # float16 -> float32 through torch (numpy's conversion is several times slower)
    x = torch.from_numpy(raw).float().numpy() if raw.dtype == np.float16 else raw.astype(
        np.float32, copy=False)
    full = min(start + keep, T // stride) - start  # windows of ``stride`` frames
    out = x if stride == 1 else _mean_in_order(x[:, : full * stride].reshape(L, full, stride, D))
    if keep > full:  # the partial last window
        out = np.concatenate([out, _mean_in_order(x[:, full * stride :][:, None])], axis=1)
    # one pass: a finite sum means finite values (features are far below float32's range)
    if not np.isfinite(out.sum()) and not np.isfinite(out).all():
        raise ValueError("features hold NaN or inf")
    return torch.from_numpy(out).half().numpy() if half else out
