"""Typed training configuration (pydantic; unknown keys are errors).

Every option has a default chosen so that one run on RAVDESS -> CASIA Whisper-base features
trains in well under a minute on 2 CPU cores. Options that only choose where and how the same
computation runs (``device``, ``num_workers``, ``cache_mb``) never enter
:meth:`TrainConfig.digest`; options added after results were recorded enter it only when they
change the behaviour from before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fairser.device import check_device_name
from fairser.errors import ConfigError

__all__ = ["ModelConfig", "TrainConfig", "load_train_config"]


#: Options added after results were recorded; left out of digests at their default behaviour.
_LATER_OPTIONS = ("input_norm", "input_norm_min_rows")
#: Options that change where/how the same computation runs, never what it computes.
_RUNTIME_OPTIONS = ("device", "num_workers", "cache_mb")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ModelConfig(_Strict):
    """Architecture of the network (see :class:`fairser.models.NetSpec`)."""

    d_model: int = Field(64, ge=8, description="Transformer width.")
    n_layers: int = Field(1, ge=0, le=12, description="Transformer layers (0: projection only).")
    n_heads: int = Field(4, ge=1, description="Attention heads; must divide d_model.")
    ff_dim: int = Field(128, ge=8, description="Feed-forward width of each transformer layer.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout in encoder and heads.")
    input_dropout: float = Field(
        0.1, ge=0.0, lt=1.0, description="Dropout on the standardised input features."
    )
    pooling: Literal["mean", "attentive_stats"] = Field(
        "mean", description="Pooling of frames into one vector: mean or attentive statistics."
    )
    embed_dim: int = Field(64, ge=2, description="Width of the shared embedding.")
    positional: bool = Field(True, description="Add sinusoidal position encodings.")
    gc_hidden: int = Field(64, ge=1, description="Hidden width of the gender classifier MLP.")
    ec_hidden: int = Field(0, ge=0, description="Hidden width of the emotion head (0: linear).")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        return self


class TrainConfig(_Strict):
    """Everything one training run needs besides data, method, emotion and seed.

    Each option is described by its ``Field``; the input standardisation needs more words.

    Notes
    -----
    ``input_norm`` chooses the statistics that standardise the input features, per
    (layer, dim) over the real (unpadded) frames after ``frame_stride``/``max_frames``:

    ``source`` (default, the behaviour of every run recorded before the option existed)
        Every row, of any corpus, is standardised with the mean and std of the source
        training rows, held in the network's input-projection buffers.
    ``per-corpus``
        Every row is standardised with the statistics of its own corpus (the ``corpus``
        column), once when its features are stacked: a corpus of the source training rows
        uses those rows (its dev rows too); a corpus seen only among the stage-2 target rows
        (``target_split``) uses those rows; the anchors alignment and the pseudo-label
        classifier see the same standardised features. At prediction time a corpus seen in
        training uses its stored statistics (saved with the model), and any other corpus,
        including the target of ``source-only``, which trains on no target rows, uses the
        statistics of its rows among those being predicted: a test-time adaptation, so its
        predictions depend on which rows are predicted together. With fewer than
        ``input_norm_min_rows`` such rows the source statistics are used and a
        ``UserWarning`` names the corpus. Only audio features are read, never target labels.
    """

    task: Literal["binary", "multiclass"] = Field(
        "binary", description="binary: the given emotion vs the rest; multiclass: `classes`."
    )
    classes: list[str] = Field(
        default_factory=lambda: ["angry", "happy", "sad", "neutral"],
        description="Emotion classes of the multiclass task (rows of other emotions dropped).",
    )
    negatives: list[str] | None = Field(
        None,
        description="Binary task: emotions that count as negatives (None: every other emotion).",
    )
    attribute: str = Field("gender", description="Manifest column of the protected attribute.")
    source_train_split: str = Field("train", description="Source split that trains the model.")
    source_dev_split: str = Field(
        "dev", description="Source split for early stopping and model selection."
    )
    target_split: str | None = Field(
        None,
        description="Target split used unlabelled in stage 2 (None: every target row; "
        "target emotion labels are never read).",
    )
    target_gender: Literal["labels", "pseudo"] = Field(
        "labels",
        description="Target attribute from the manifest (labels) or predicted by a classifier "
        "trained on the source (pseudo).",
    )
    input_norm: Literal["source", "per-corpus"] = Field(
        "source",
        description="Input standardisation. source: every row with the per-(layer, dim) "
        "mean/std of the source training frames. per-corpus: every row with the statistics "
        "of its own corpus (source corpus: its training rows; target corpus: the target "
        "rows used in stage 2; a corpus unseen in training, e.g. the target of source-only: "
        "the rows being predicted, a test-time adaptation, falling back to the source "
        "statistics with a warning below input_norm_min_rows rows). Reads target audio, "
        "never target labels.",
    )
    input_norm_min_rows: int = Field(
        20,
        ge=1,
        description="per-corpus: fewest rows of a corpus unseen in training from which its "
        "own statistics are computed at prediction time.",
    )
    frame_stride: int = Field(
        4, ge=1, description="Average-pool this many frames into one before training."
    )
    max_frames: int = Field(
        96, ge=1, description="Cap on frames per utterance after striding (centre crop)."
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="Network architecture.")
    batch_size: int = Field(64, ge=2, description="Rows per mini-batch (source + target).")
    target_fraction: float = Field(
        0.5, gt=0.0, lt=1.0, description="Share of each stage-2 batch drawn from the target."
    )
    stage1_epochs: int = Field(20, ge=1, description="Maximum epochs of stage 1 (source only).")
    stage2_epochs: int = Field(
        6, ge=0, description="Maximum epochs of stage 2 (mixed source+target)."
    )
    patience: int = Field(
        4, ge=1, description="Stop a stage after this many epochs without a better source dev."
    )
    lr: float = Field(1e-3, gt=0.0, description="AdamW learning rate of stage 1.")
    stage2_lr: float | None = Field(
        None, gt=0.0, description="AdamW learning rate of stage 2 (None: half of `lr`)."
    )
    weight_decay: float = Field(1e-2, ge=0.0, description="AdamW weight decay.")
    grad_clip: float = Field(5.0, ge=0.0, description="Gradient norm clip (0: off).")
    balance: Literal["weights", "sampler", "none"] = Field(
        "weights",
        description="Class imbalance: class-balanced loss weights, class-balanced batches, "
        "or nothing.",
    )
    alignment: Literal["coral", "anchors", "none"] = Field(
        "coral", description="Stage-2 unsupervised source/target alignment of PA."
    )
    align_weight: float = Field(1.0, ge=0.0, description="Weight of the alignment loss.")
    n_anchors: int = Field(16, ge=2, description="Acoustic anchor clusters for `anchors`.")
    anchor_energy_quantile: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="Frames below this per-utterance quantile of the energy proxy get no anchor.",
    )
    alpha: float = Field(0.5, ge=0.0, description="Weight of L_GSim (pa-cfa).")
    beta: float = Field(0.5, ge=0.0, description="Gradient reversal coefficient (pa-adv, pa-cfa).")
    beta_schedule: Literal["constant", "dann"] = Field(
        "constant", description="Constant beta or the DANN ramp over stage 2."
    )
    gsim_margin: float = Field(1.0, gt=0.0, description="Margin m of L_GSim.")
    gsim_normalize: bool = Field(True, description="L2-normalise vectors before L_GSim.")
    gsim_on: Literal["shared", "gender_branch"] = Field(
        "shared",
        description="Representation L_GSim acts on: the shared embedding or the gender "
        "branch's hidden layer (behind the reversal).",
    )
    fairw_rate: float = Field(
        0.5, gt=0.0, le=1.0, description="pa-fairw: step of the per-epoch group weight update."
    )
    fairw_eps: float = Field(
        0.02, gt=0.0, description="pa-fairw: error-rate smoothing added to every group."
    )
    num_threads: int | None = Field(
        None, ge=1, description="torch threads during fit (None: leave torch's setting)."
    )
    eval_batch_size: int = Field(256, ge=1, description="Rows per batch when predicting.")
    bucketing: bool = Field(
        True,
        description="Group rows of similar length into the same batch (within pools of "
        "consecutive shuffled rows), so that a batch is padded to lengths close to its own; "
        "false: the batches of plain shuffling (the behaviour before this option existed).",
    )
    num_workers: int = Field(
        0,
        ge=0,
        description="DataLoader worker processes reading feature batches from the store "
        "(0: read in the training process).",
    )
    cache_mb: float = Field(
        256.0,
        ge=0.0,
        description="Without workers, keep every row's input in memory after the first epoch "
        "when all of them fit in this many MiB (small corpora: read once); larger corpora, "
        "and any fit with workers, read each batch from the store every epoch (0: always).",
    )
    device: str = Field(
        "auto",
        description="Where to train: auto (CUDA if available, then MPS, else CPU), cpu, cuda, "
        "cuda:N or mps.",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Arithmetic of forward and loss: fp32, or autocast to bf16 / fp16 (fp16 "
        "with loss scaling on CUDA; on CPU fp16 runs as fp32).",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.task == "multiclass" and len(set(self.classes)) < 2:
            raise ValueError("multiclass needs at least two distinct `classes`")
        return self

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        try:
            return check_device_name(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @property
    def resolved_stage2_lr(self) -> float:
        """Stage-2 learning rate after applying the default."""
        return self.stage2_lr if self.stage2_lr is not None else self.lr / 2

    def digest(self) -> str:
        """Short stable hash of the resolved configuration.

        The input-normalisation options are left out while ``input_norm`` is ``source``,
        ``bucketing`` while false and ``precision`` while ``fp32`` (the behaviour from before
        they existed), so that runs finished before they were added keep their digest;
        ``device``, ``num_workers`` and ``cache_mb`` are always left out (they do not change
        the result beyond floating-point rounding).
        """
        d = self.model_dump(mode="json")
        if d["input_norm"] == "source":
            for key in _LATER_OPTIONS:
                d.pop(key)
        for key in _RUNTIME_OPTIONS:
            d.pop(key)
        if not d["bucketing"]:
            d.pop("bucketing")
        if d["precision"] == "fp32":
            d.pop("precision")
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def coerce_config(
    config: TrainConfig | dict[str, Any] | None, *, where: str = "config"
) -> TrainConfig:
    """Turn ``None``, a dict or a :class:`TrainConfig` into a validated :class:`TrainConfig`.

    Raises
    ------
    ConfigError
        One line naming ``where``, the offending key and the problem.
    """
    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return config
    if not isinstance(config, dict):
        raise ConfigError(
            f"{where}: expected a mapping of training options, got {type(config).__name__}"
        )
    try:
        return TrainConfig.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or fix its spelling"
        parts.append(f"key '{loc}': {msg}")
    return "; ".join(parts)


def load_train_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML file into a plain dict (validation is the caller's job).

    Raises
    ------
    ConfigError
        When the file is missing or is not valid YAML holding a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{p}: cannot read the config file ({exc.strerror}); check the path"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not a UTF-8 text file (byte {exc.start}); save the YAML config as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{row} invalid YAML; fix the syntax there") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
    return data
