"""Whisper encoder frontends (``whisper-base``, ``whisper-tiny.en``): unpadded and batched.

No 30-second padding: :class:`WhisperEncoderRunner` computes the log-mel for the real length,
slices the positional table to the frames present and masks padding inside a batch (the stock
forward insists on 3000 mel frames, a 10x waste for 3-second utterances). Audio longer than 30 s
is cut into 30 s windows whose features are concatenated in time. The weights (installed
CTranslate2 files, their SHA-256 check and conversion) are :mod:`fairser.features.whisper_weights`.

Device and precision come from the frontend's :class:`~fairser.features.base.Runtime`: one code
path moves the encoder and every tensor it builds to ``runtime.device`` and runs under
``runtime.autocast()`` (fp32: no autocast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairser.features._options import FrontendOptions, parse_options
from fairser.features.base import Frontend, LayerSpec, normalize_layers
from fairser.features.logmel import whisper_log_mel

# The weight API stays importable from here (tests and earlier callers use these names).
from fairser.features.whisper_weights import (  # noqa: F401
    WHISPER_WEIGHTS,
    WhisperWeights,
    load_whisper_encoder,
    part_paths,
    read_verified_ct2,
    read_whisper_ct2,
    weights_of,
    whisper_config,
    whisper_state_dict,
)
from fairser.features.whisper_weights import part_paths as _part_paths  # noqa: F401
from fairser.features.whisper_weights import weights_of as _weights

__all__ = [
    "WhisperFrontend",
    "WhisperOptions",
    "WhisperEncoderRunner",
    "run_batched",
    "whisper_base",
    "whisper_tiny_en",
]

#: Samples per encoder window (30 s at 16 kHz) and mel frames per window.
WINDOW_SAMPLES = 480_000
HOP = 160


def _conv_out(n_mel: int) -> int:
    return (n_mel - 1) // 2 + 1


class WhisperEncoderRunner:
    """Run a ``WhisperEncoder`` on unpadded log-mels, batched with masks, up to a chosen layer.

    Layer ``0`` is the convolution front end plus positions; layer ``i`` is the output of block
    ``i``; the last layer has the encoder's final layer norm applied (what the decoder reads).

    Parameters
    ----------
    encoder : transformers WhisperEncoder
        In eval mode, on the device to compute on (inputs are moved there, outputs come back
        to the CPU as float32).
    """

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.n_blocks = len(encoder.layers)
        self.max_frames = encoder.embed_positions.weight.shape[0]

    @torch.inference_mode()
    def run(self, mels: list[torch.Tensor], layers: tuple[int, ...]) -> list[torch.Tensor]:
        """Hidden states of ``layers`` for each ``(n_mels, T_mel)`` input.

        Parameters
        ----------
        mels : list of torch.Tensor
            Log-mels of at most ``2 * max_source_positions`` frames each.
        layers : tuple of int
            Sorted layer indices in ``0..n_blocks``.

        Returns
        -------
        list of torch.Tensor
            ``(len(layers), ceil(T_mel / 2), d_model)`` float32 per input.
        """
        enc = self.encoder
        dtype, device = enc.conv1.weight.dtype, enc.conv1.weight.device
        lens = [int(m.shape[1]) for m in mels]
        t_mel = max(lens)
        x = torch.zeros(len(mels), mels[0].shape[0], t_mel, dtype=dtype)
        for i, m in enumerate(mels):
            x[i, :, : lens[i]] = m
        x = x.to(device)
        ragged = min(lens) != t_mel
        h = torch.nn.functional.gelu(enc.conv1(x))
        if ragged:  # zero conv1 outputs past each end, exactly as the unbatched zero padding
            valid = torch.arange(t_mel)[None, :] < torch.tensor(lens)[:, None]
            h = h * valid[:, None, :].to(device=device, dtype=dtype)
        h = torch.nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)
        t_out = h.shape[1]
        h = h + enc.embed_positions.weight[:t_out].to(dtype)
        mask = None
        out_lens = [_conv_out(n) for n in lens]
        if ragged:
            keep = torch.arange(t_out)[None, :] < torch.tensor(out_lens)[:, None]
            mask = torch.zeros(len(mels), 1, 1, t_out, dtype=dtype)
            mask.masked_fill_(~keep[:, None, None, :], torch.finfo(dtype).min)
            mask = mask.to(device)
        kept: list[torch.Tensor] = []
        if 0 in layers:
            kept.append(enc.layer_norm(h) if self.n_blocks == 0 else h)
        for i in range(max(layers)):
            h = enc.layers[i](h, mask)
            if i + 1 in layers:
                kept.append(enc.layer_norm(h) if i + 1 == self.n_blocks else h)
        stacked = torch.stack(kept, dim=1).float().cpu()  # (B, L, T, D)
        return [stacked[b, :, : out_lens[b]] for b in range(len(mels))]


class WhisperOptions(FrontendOptions):
    """Options of the Whisper frontends (none yet: device, precision and batch size are the
    extraction's ``device``, ``precision`` and ``batch_seconds``)."""


class WhisperFrontend(Frontend):
    """Frame features of a Whisper encoder at 50 frames per second.

    Parameters
    ----------
    name : str
        ``"whisper-base"`` (512-d, 7 layers) or ``"whisper-tiny.en"`` (384-d, 5 layers).
    layers : int, list of int, "all" or None
        Layer 0 is the input embedding, ``n`` the output of block ``n``; default the last.
    cache_dir : str or Path, optional
        Where the converted encoder is cached.
    **options
        Fields of :class:`WhisperOptions`.
    """

    batched = True
    accelerated = True
    sample_rate = 16000
    frame_rate = 50.0
    version = 1
    _DIMS = {"whisper-base": (512, 6), "whisper-tiny.en": (384, 4)}

    def __init__(self, name: str, *, layers: LayerSpec = None,
                 cache_dir: str | Path | None = None, **options: Any) -> None:
        self.weights = _weights(name)
        self.name = name
        self.options = parse_options(WhisperOptions, options, frontend=name)
        self._dim, self._blocks = self._DIMS[name]
        self.layers = normalize_layers(layers, self._blocks + 1, frontend=name)
        self.cache_dir = cache_dir
        self._runner: WhisperEncoderRunner | None = None

    @property
    def n_layers(self) -> int:
        """Embedding output plus one per transformer block."""
        return self._blocks + 1

    @property
    def dim(self) -> int:
        """Model width."""
        return self._dim

    def config(self) -> dict[str, Any]:
        """Model digest, layers, precision and algorithm version.

        fp32 is written ``"compute_dtype": "float32"`` as before precisions existed, so stores
        made then are still found; bf16 and fp16 (autocast) are ``"autocast-bf16"`` /
        ``"autocast-fp16"``, apart from each other and from the weight-cast ``"bfloat16"`` of
        earlier versions.
        """
        precision = self.runtime.precision
        return {"frontend": self.name, "version": self.version, "weights": self.weights.sha256,
                "layers": list(self.layers),
                "compute_dtype": "float32" if precision == "fp32" else f"autocast-{precision}"}

    def min_samples(self) -> int:
        """One mel frame (10 ms)."""
        return HOP

    def load(self) -> None:
        """Load (and on first use convert) the encoder, on the runtime's device."""
        if self._runner is None:
            encoder = load_whisper_encoder(self.name, cache_dir=self.cache_dir)
            self._runner = WhisperEncoderRunner(encoder.to(self.runtime.torch_device()))

    def release(self) -> None:
        """Drop the loaded encoder."""
        self._runner = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_runner"] = None
        return state

    def mels(self, signal: np.ndarray) -> list[torch.Tensor]:
        """Log-mels of the 30-second windows of ``signal`` (the last one unpadded)."""
        return [whisper_log_mel(signal[s:s + WINDOW_SAMPLES])
                for s in range(0, max(len(signal), 1), WINDOW_SAMPLES)]

    def compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """``(len(layers), T, dim)`` features per signal, ``T = ceil(len / 320)``."""
        self.load()
        assert self._runner is not None
        windows: list[tuple[int, torch.Tensor]] = []
        for i, sig in enumerate(signals):
            windows.extend((i, m) for m in self.mels(sig))
        budget = self.runtime.batch_seconds * self.sample_rate / HOP  # padded mel frames
        results = run_batched(self._runner, [m for _, m in windows], self.layers,
                              frame_budget=budget, autocast=self.runtime.autocast)
        per_signal: list[list[torch.Tensor]] = [[] for _ in signals]
        for (i, _), res in zip(windows, results, strict=True):
            per_signal[i].append(res)
        return [torch.cat(parts, dim=1).numpy() for parts in per_signal]


def run_batched(runner: WhisperEncoderRunner, mels: list[torch.Tensor], layers: tuple[int, ...],
                *, frame_budget: float, autocast: Any) -> list[torch.Tensor]:
    """``runner.run`` over ``mels`` in sub-batches of similar length, in input order.

    Inputs are sorted by length and cut into sub-batches whose padded mel frames stay within
    ``frame_budget`` and whose longest input is at most 1.25 x its shortest + 50 frames; each
    sub-batch runs under ``autocast()`` (the frontend runtime's precision context).
    """
    order = sorted(range(len(mels)), key=lambda j: mels[j].shape[1])
    results: list[torch.Tensor | None] = [None] * len(mels)
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order):
            longest = mels[order[stop]].shape[1]
            if longest * (stop + 1 - start) > frame_budget:
                break
            if longest > 1.25 * mels[order[start]].shape[1] + 50:
                break
            stop += 1
        idx = order[start:stop]
        with autocast():
            outs = runner.run([mels[j] for j in idx], layers)
        for j, o in zip(idx, outs, strict=True):
            results[j] = o
        start = stop
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def whisper_base(*, layers: LayerSpec = None, cache_dir: str | Path | None = None,
                 **options: Any) -> WhisperFrontend:
    """The ``whisper-base`` frontend (registry factory)."""
    return WhisperFrontend("whisper-base", layers=layers, cache_dir=cache_dir, **options)


def whisper_tiny_en(*, layers: LayerSpec = None, cache_dir: str | Path | None = None,
                    **options: Any) -> WhisperFrontend:
    """The ``whisper-tiny.en`` frontend (registry factory)."""
    return WhisperFrontend("whisper-tiny.en", layers=layers, cache_dir=cache_dir, **options)
