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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fairser.device import DeviceName

__all__ = ["RUNTIME_OPTIONS", "ModelConfig", "TrainConfig"]


#: Options added after results were recorded; left out of digests at their default behaviour.
_LATER_OPTIONS = ("input_norm", "input_norm_min_rows")
#: Lever options: (switch, its default, the options that only matter when it is not default).
_LEVER_OPTIONS = (
    ("input_norm", "source", ("speaker_norm_strength", "speaker_norm_min_utterances")),
    ("erase", "none", ("erase_on", "erase_strength")),
    ("thresholds", "none", ("threshold_strength",)),
    ("selection", "source-dev", ("selection_weight",)),
    ("self_train", 0.0, ("self_train_rounds",)),
)
#: Options that change where/how the same computation runs, never what it computes: left out
#: of :meth:`TrainConfig.digest` and of grid fit ids (:mod:`fairser.experiments.planning`).
#: ``num_threads`` and ``precision`` are not among them: they can change float arithmetic.
RUNTIME_OPTIONS = ("device", "num_workers", "cache_mb")


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
    embed_dim: int = Field(
        64,
        ge=0,
        description="Width of the shared embedding (a linear layer + GELU after pooling). "
        "0: no such layer, the pooled encoder output is the shared embedding (d_model wide, "
        "2 x d_model with attentive_stats pooling).",
    )
    positional: bool = Field(True, description="Add sinusoidal position encodings.")
    gc_hidden: int = Field(64, ge=1, description="Hidden width of the gender classifier MLP.")
    ec_hidden: int = Field(0, ge=0, description="Hidden width of the emotion head (0: linear).")

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        if self.embed_dim == 1:
            raise ValueError("embed_dim=1 is too narrow; use 2 or more, or 0 for no embedding "
                             "layer")
        return self


class TrainConfig(_Strict):
    """Everything one training run needs besides data, method, emotion and seed.

    Each option is described by its ``Field``; docs/levers.md ("Levers in training") gives
    the fairness levers (``input_norm: per-speaker``, ``erase``, ``thresholds``,
    ``selection``) in full.

    Notes
    -----
    ``input_norm: per-corpus`` standardises each row with its corpus's statistics (a source
    corpus: its training rows; a target corpus: the stage-2 target rows); at prediction time
    a corpus unseen in training (e.g. the target of ``source-only``) uses its rows among those
    being predicted (a test-time adaptation; below ``input_norm_min_rows`` rows: the source
    statistics, with a warning). ``per-speaker`` does the same per (corpus, speaker) with
    :class:`fairser.levers.SpeakerNorm`. Both read target audio, never target labels.

    Layer weighting: with several feature layers (features config ``layers: all``, e.g. the 7
    hidden states of whisper-base) the network already learns a softmax weighting of the
    layers (:class:`fairser.models.blocks.LayerWeighting`, its weights recorded in the
    history as ``layer_weights``); no option is needed.
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
    input_norm: Literal["source", "per-corpus", "per-speaker"] = Field(
        "source",
        description="Input standardisation. source: with the source training frames' "
        "per-(layer, dim) mean/std. per-corpus: with its corpus's (a corpus unseen in "
        "training: its rows being predicted, below input_norm_min_rows the source's, with a "
        "warning). per-speaker: with its (corpus, speaker)'s (levers.SpeakerNorm on the "
        "`speaker` column, fitted on the source training and stage-2 target rows; an unseen "
        "speaker: its rows being predicted, else its corpus's, one warning counting each "
        "fallback). Reads target audio, never target labels.",
    )
    input_norm_min_rows: int = Field(
        20,
        ge=1,
        description="per-corpus: fewest rows of a corpus unseen in training from which its "
        "own statistics are computed at prediction time.",
    )
    speaker_norm_strength: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="per-speaker: interpolation from corpus statistics (0) to the speaker's "
        "own (1): mean = (1-w) m_corpus + w m_speaker, std = s_corpus^(1-w) s_speaker^w.",
    )
    speaker_norm_min_utterances: int = Field(
        3, ge=1, description="per-speaker: fewest utterances for a speaker's own statistics."
    )
    erase: Literal["none", "leace", "qleace"] = Field(
        "none",
        description="Gender concept erasure (fairser.levers): none, leace (linear, "
        "GenderEraser) or qleace (means and covariances, QuadraticGenderEraser; needs each "
        "row's gender at prediction, rows without one are left unchanged with a warning). "
        "Fitted with the gender labels of the source training rows and the stage-2 target "
        "rows (for source-only: the target rows passed to fit); never emotion labels.",
    )
    erase_on: Literal["embedding", "inputs", "both"] = Field(
        "embedding",
        description="embedding: after training, fit the eraser on the shared embeddings and "
        "refit the emotion head on the erased source training embeddings (prediction: "
        "encoder -> eraser -> head; embeddings are returned erased). inputs: erase every "
        "frame vector (layers flattened) before the network, in training and prediction. "
        "both: the two, an eraser of the same kind on each.",
    )
    erase_strength: float = Field(1.0, ge=0.0, le=1.0, description="Erasure strength (0: off).")
    thresholds: Literal["none", "parity"] = Field(
        "none",
        description="Decision rule. none: fairser.decision.decide's plain rule. parity: "
        "per-gender thresholds (binary) or log-score offsets (multiclass) "
        "(fairser.levers.GroupThresholds) fitted at the end of fit on the model's scores on "
        "the stage-2 target rows (source-only: the target rows passed to fit), unlabelled, "
        "by gender, so that the genders' positive rates match; saved with the model and "
        "applied by predict (Outputs.labels). Rows of a missing or unknown gender get the "
        "plain rule with a warning.",
    )
    threshold_strength: float = Field(
        1.0, ge=0.0, le=1.0, description="parity: how far thresholds move (0: plain rule)."
    )
    selection: Literal["source-dev", "target-parity"] = Field(
        "source-dev",
        description="Model selection and early stopping of each stage. source-dev: the "
        "source dev UAR. target-parity: source dev UAR - selection_weight x dSP, dSP being "
        "the largest gap between the target genders' positive (per-class) rates of the "
        "predictions on the stage-2 target rows (source-only: the target rows passed to "
        "fit); reads target gender, never target emotion labels. Recorded in the history.",
    )
    selection_weight: float = Field(
        1.0, ge=0.0, description="target-parity: weight of the target dSP in the score."
    )
    self_train: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Target self-training at the end of fit (0: off): each round refits the "
        "emotion head on the source training embeddings plus this fraction of the stage-2 "
        "target rows (source-only: the target rows passed to fit) pseudo-labelled by the "
        "head's own scores, chosen within each gender (binary: the fraction/2 highest-scored "
        "rows of each gender as positives, the fraction/2 lowest as negatives; multiclass: "
        "fraction/C per class). Reads target gender, never target emotion labels.",
    )
    self_train_rounds: int = Field(1, ge=1, description="self_train: pseudo-label rounds.")
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
        False,
        description="Group rows of similar length into the same batch (within pools of "
        "consecutive shuffled rows), so that a batch is padded to lengths close to its own: "
        "less padding on corpora of very different clip lengths (MSP-Podcast), but batches "
        "whose emotions follow their lengths; measured on RAVDESS -> ASED it cost pa 0.07-0.14 "
        "target UAR (docs/scaling.md), hence off by default. false: plain shuffled batches.",
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
    device: DeviceName = Field(
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

    @property
    def erase_inputs(self) -> bool:
        """True when an eraser is fitted on the input frames (``erase_on: inputs | both``)."""
        return self.erase != "none" and self.erase_on in ("inputs", "both")

    @property
    def erase_embedding(self) -> bool:
        """True when an eraser is fitted on the embedding (``erase_on: embedding | both``)."""
        return self.erase != "none" and self.erase_on in ("embedding", "both")

    @property
    def resolved_stage2_lr(self) -> float:
        """Stage-2 learning rate after applying the default."""
        return self.stage2_lr if self.stage2_lr is not None else self.lr / 2

    def digest(self) -> str:
        """Short stable hash of the resolved configuration.

        The input-normalisation options are left out while ``input_norm`` is ``source``
        (the per-speaker ones unless it is ``per-speaker``), each lever option (``erase*``,
        ``threshold*``, ``selection*``, ``self_train*``) while its switch is at its default,
        ``bucketing`` while false and ``precision`` while ``fp32`` (the behaviour from before
        they existed), so that runs finished before they were added keep their digest;
        ``device``, ``num_workers`` and ``cache_mb`` are always left out (they do not change
        the result beyond floating-point rounding).
        """
        d = self.model_dump(mode="json")
        for switch, default, extra in _LEVER_OPTIONS:
            if switch == "input_norm" and d[switch] != "per-speaker":
                for key in extra:
                    d.pop(key)
            elif switch != "input_norm" and d[switch] == default:
                for key in (switch, *extra):
                    d.pop(key)
        if d["input_norm"] == "source":
            for key in _LATER_OPTIONS:
                d.pop(key)
        for key in RUNTIME_OPTIONS:
            d.pop(key)
        if not d["bucketing"]:
            d.pop("bucketing")
        if d["precision"] == "fp32":
            d.pop("precision")
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
