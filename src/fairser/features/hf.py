"""``hf:<hub id or local folder>``: any transformers speech encoder through the Auto classes.

wav2vec 2.0, WavLM, HuBERT and data2vec-audio run through ``AutoModel`` with
``output_hidden_states``; Whisper checkpoints run their encoder through fairser's unpadded runner
(:class:`fairser.features.whisper.WhisperEncoderRunner`) instead of the 30-second padded forward.

Offline by default (``local_files_only=True``); the ``allow_download`` option lets a hub id be
fetched. ``trust_remote_code`` is never enabled: only architectures built into transformers load.
:func:`model_source` decides whether ``<model>`` is a local folder or a hub id, so a missing
folder is reported as one. The model runs on the frontend's ``runtime.device`` under its
precision's autocast (one code path for every device).

Batching: wav2vec2, WavLM and HuBERT checkpoints with a layer-norm feature encoder and an
attention-mask-returning feature extractor (WavLM, wav2vec2-large-lv60, HuBERT-large) are batched
by length with that mask, which leaves every utterance's features equal to its unbatched ones.
Group-norm encoders (wav2vec2-base, HuBERT-base) normalise over time, padding included, and
data2vec-audio's stacked positional convolutions see padding, so those run one utterance at a
time to stay exact. Whisper checkpoints batch their 30-second windows by length under the
``batch_seconds`` budget (:func:`fairser.features.whisper.run_batched`, masked, as the built-in
Whisper frontends do).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from fairser.errors import FeatureError
from fairser.features._options import FrontendOptions, parse_options
from fairser.features.base import Frontend, LayerSpec, normalize_layers

__all__ = ["HFFrontend", "HFOptions", "model_source"]

#: Architectures whose masked, padded batches reproduce unbatched features (layer-norm feature
#: encoder, padded frames zeroed before the single positional convolution). data2vec-audio
#: stacks positional convolutions that see padding, so it runs unbatched like group-norm models.
_BATCH_EXACT = frozenset({"wav2vec2", "wavlm", "hubert"})


class HFOptions(FrontendOptions):
    """Options of the ``hf:`` frontend."""

    allow_download: bool = Field(
        False, description="Let a hub id be downloaded (otherwise only the local cache is used).")
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit) to load.")


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def model_source(model: str) -> str:
    """``"folder"`` or ``"hub"``: how ``hf:<model>`` is read.

    A path that exists, or that looks like one (absolute, starting with ``.`` or ``~``, or
    with more than one ``/``) is a local folder, even when it is missing (so a mistyped path is
    reported as a missing folder, not as an unknown hub id); ``name`` or ``org/name`` is a hub id.
    """
    if os.path.exists(os.path.expanduser(model)):
        return "folder"
    if model.startswith(("/", ".", "~", "\\")) or not _HUB_ID.match(model):
        return "folder"
    return "hub"


def _folder_fingerprint(folder: Path) -> str:
    """Digest of a local model folder: config bytes plus every file's name, size and mtime."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        if path.name == "config.json":
            h.update(path.read_bytes())
    return h.hexdigest()


class HFFrontend(Frontend):
    """Hidden states of a transformers speech encoder.

    Parameters
    ----------
    model : str
        Hub id (``"microsoft/wavlm-base-plus"``) or a local folder saved with
        ``save_pretrained`` (model and feature extractor).
    layers : int, list of int, "all" or None
        ``0`` is the input to the first transformer block, ``n`` the output of block ``n``;
        default the last.
    cache_dir : str or Path, optional
        Unused for weights (the hub cache is transformers' own); accepted for uniformity.
    **options
        Fields of :class:`HFOptions`.

    Raises
    ------
    FeatureError
        The model cannot be found offline, or is not a speech encoder transformers knows.
    """

    sample_rate = 16000
    batched = True
    accelerated = True
    version = 1

    def __init__(self, model: str, *, layers: LayerSpec = None, cache_dir: object = None,
                 **options: Any) -> None:
        if not model:
            raise FeatureError("hf: needs a model, e.g. hf:microsoft/wavlm-base-plus or "
                               "hf:/path/to/folder")
        self.model_id = model
        self.name = f"hf:{model}"
        self.options = parse_options(HFOptions, options, frontend=self.name)
        self.source = model_source(model)
        self._ref = str(Path(model).expanduser()) if self.source == "folder" else model
        self.cfg = self._load_config()
        self.model_type = str(self.cfg.model_type)
        if self.model_type == "whisper":
            blocks = int(self.cfg.encoder_layers)
            self._dim = int(self.cfg.d_model)
            self.frame_rate = 50.0
        else:
            blocks = int(getattr(self.cfg, "num_hidden_layers", 0))
            self._dim = int(getattr(self.cfg, "hidden_size", 0))
            strides = getattr(self.cfg, "conv_stride", None)
            if not blocks or not self._dim or not strides:
                raise FeatureError(
                    f"{self.name}: model type {self.model_type!r} is not a speech encoder with "
                    f"hidden states (wav2vec2, WavLM, HuBERT, data2vec-audio or Whisper)")
            self.frame_rate = self.sample_rate / float(np.prod(strides))
        self._blocks = blocks
        self.layers = normalize_layers(layers, blocks + 1, frontend=self.name)
        self._model = None
        self._extractor = None
        self._runner = None

    # -- loading ----------------------------------------------------------------------------
    def _kwargs(self) -> dict[str, Any]:
        return {"local_files_only": not self.options.allow_download,
                "trust_remote_code": False, "revision": self.options.revision}

    def _load_config(self):
        from transformers import AutoConfig

        kind = self.source
        if kind == "folder":
            folder = Path(self._ref)
            if not folder.exists():
                raise FeatureError(
                    f"{self.name}: local model folder {folder.absolute()} does not exist; pass "
                    f"a folder saved with save_pretrained (model and feature extractor)")
            if not folder.is_dir():
                raise FeatureError(f"{self.name}: {folder.absolute()} is a file, not a model "
                                   f"folder; pass the folder saved with save_pretrained")
        try:
            return AutoConfig.from_pretrained(self._ref, **self._kwargs())
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            if kind == "folder":
                raise FeatureError(
                    f"{self.name}: cannot load the local folder ({first}); it must hold a "
                    f"transformers speech model saved with save_pretrained") from None
            if not self.options.allow_download:
                raise FeatureError(
                    f"{self.name}: hub id {self.model_id!r} is not in the local Hugging Face "
                    f"cache and fairser is offline (no downloads by default); pre-download it "
                    f"with `hf download {self.model_id}` (HF_HOME selects the cache), pass a "
                    f"folder saved with save_pretrained, or allow downloads with "
                    f"--allow-download") from None
            raise FeatureError(f"{self.name}: cannot fetch hub id {self.model_id!r} ({first}); "
                               f"check the name and the network") from None

    @property
    def n_layers(self) -> int:
        """Input to the first block plus one per block."""
        return self._blocks + 1

    @property
    def dim(self) -> int:
        """Hidden size."""
        return self._dim

    def config(self) -> dict[str, Any]:
        """Model identity (commit hash or local folder fingerprint), layers, algorithm version."""
        if self.source == "folder":
            ident = {"folder": str(Path(self._ref).resolve()),
                     "fingerprint": _folder_fingerprint(Path(self._ref))}
        else:
            ident = {"hub_id": self.model_id, "revision": self.options.revision,
                     "commit": getattr(self.cfg, "_commit_hash", None)}
        precision = {} if self.runtime.precision == "fp32" else {
            "precision": self.runtime.precision}  # fp32 hashes as before precisions existed
        return {"frontend": "hf", "version": self.version, **ident, "layers": list(self.layers),
                **precision}

    def load(self) -> None:
        """Load the weights (and the feature extractor for non-Whisper models)."""
        if self._model is not None:
            return
        from transformers import AutoFeatureExtractor, AutoModel

        try:
            model = AutoModel.from_pretrained(self._ref, **self._kwargs())
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise FeatureError(f"{self.name}: cannot load the weights ({first}); save the "
                               f"model with save_pretrained or allow downloads") from None
        model.eval().requires_grad_(False).to(self.runtime.torch_device())
        if self.model_type == "whisper":
            from fairser.features.whisper import WhisperEncoderRunner

            encoder = model.get_encoder() if hasattr(model, "get_encoder") else model
            self._runner = WhisperEncoderRunner(encoder)
        else:
            try:
                self._extractor = AutoFeatureExtractor.from_pretrained(self._ref,
                                                                       **self._kwargs())
            except (OSError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                raise FeatureError(
                    f"{self.name}: no feature extractor ({first}); save one next to the model "
                    f"(e.g. Wav2Vec2FeatureExtractor().save_pretrained(folder))") from None
        self._model = model

    def release(self) -> None:
        """Drop the loaded model."""
        self._model = self._extractor = self._runner = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_model=None, _extractor=None, _runner=None)
        return state

    # -- computing --------------------------------------------------------------------------
    def compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """``(len(layers), T, dim)`` hidden states per signal."""
        self.load()
        if self.model_type == "whisper":
            from fairser.features.logmel import whisper_log_mel
            from fairser.features.whisper import HOP, WINDOW_SAMPLES, run_batched

            n_mels = int(self.cfg.num_mel_bins)
            owner: list[int] = []
            mels: list[torch.Tensor] = []
            for i, sig in enumerate(signals):
                for s in range(0, max(len(sig), 1), WINDOW_SAMPLES):
                    owner.append(i)
                    mels.append(whisper_log_mel(sig[s:s + WINDOW_SAMPLES], n_mels=n_mels))
            budget = self.runtime.batch_seconds * self.sample_rate / HOP  # padded mel frames
            results = run_batched(self._runner, mels, self.layers, frame_budget=budget,
                                  autocast=self.runtime.autocast)
            parts: list[list[torch.Tensor]] = [[] for _ in signals]
            for i, res in zip(owner, results, strict=True):
                parts[i].append(res)
            return [torch.cat(p, dim=1).numpy() for p in parts]
        if not self._batchable():
            return [self._forward([s])[0] for s in signals]
        out: list[np.ndarray] = []
        limit = int(self.runtime.batch_seconds * self.sample_rate)
        start = 0
        while start < len(signals):
            stop = start + 1
            while (stop < len(signals)
                   and max(len(s) for s in signals[start:stop + 1]) * (stop + 1 - start) <= limit):
                stop += 1
            out.extend(self._forward(signals[start:stop]))
            start = stop
        return out

    def _batchable(self) -> bool:
        """Whether padded batches give exactly the unbatched features (see the module notes)."""
        return (self.model_type in _BATCH_EXACT
                and getattr(self.cfg, "feat_extract_norm", "group") == "layer"
                and bool(getattr(self._extractor, "return_attention_mask", False)))

    @torch.inference_mode()
    def _forward(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        assert self._model is not None and self._extractor is not None
        inputs = self._extractor(signals, sampling_rate=self.sample_rate, return_tensors="pt",
                                 padding=True)
        device = self.runtime.torch_device()
        kwargs = {"attention_mask": inputs["attention_mask"].to(device)} if (
            "attention_mask" in inputs and len(signals) > 1) else {}
        with self.runtime.autocast():
            result = self._model(inputs["input_values"].to(device), output_hidden_states=True,
                                 **kwargs)
        states = torch.stack([result.hidden_states[i] for i in self.layers], dim=1).float().cpu()
        lengths = self._model._get_feat_extract_output_lengths(  # noqa: SLF001
            torch.tensor([len(s) for s in signals]))
        return [states[b, :, : int(lengths[b])].numpy() for b in range(len(signals))]
