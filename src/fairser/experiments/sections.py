"""The sections of an experiment config: corpora, features, conditions, splits, CIs, probes.

Each is a strict pydantic model (unknown keys are errors, NaN and infinity are rejected, every
option has a default and a description, value ranges are ``Field`` constraints), so ``fairser
run --dry-run`` and the run itself check the same things. :class:`ExperimentConfig` in
:mod:`fairser.experiments.config` assembles them; the exact meaning of a source condition and of
the target split is defined in that module's docstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fairser.device import PRECISIONS, DeviceName

__all__ = [
    "MAX_SEED",
    "BootstrapConfig",
    "CorpusConfig",
    "FeatureConfig",
    "MethodVariant",
    "ProbeConfig",
    "Seed",
    "SourceSplitConfig",
    "SubsampleSpec",
    "SweepConfig",
    "TargetSplitConfig",
]

#: Largest seed: every random generator downstream (numpy, torch, scikit-learn) accepts it.
MAX_SEED = 2**32 - 1

#: A seed: a plain non-negative integer below 2**32 (``yes`` or ``1.5`` are not seeds).
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]


class _Strict(BaseModel):
    """Base of every config model: unknown keys are errors, instances are immutable, and NaN
    or infinite numbers are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)


class CorpusConfig(_Strict):
    """One corpus of the experiment.

    A bare string ``"KIND:ROOT"`` in YAML is accepted and becomes ``{spec: "KIND:ROOT"}``.
    """

    spec: str = Field(
        description="`KIND:ROOT`, e.g. `ravdess:../data/ravdess`; a relative ROOT is resolved "
        "against the folder of the config file; `$VAR` / `${VAR}` and `~` are expanded; an "
        "empty ROOT is kept empty (the synthetic corpora then use the default cache).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options passed to the corpus adapter (`load_corpus(spec, options=...)`), "
        "e.g. label map overrides.",
    )
    name: str | None = Field(
        default=None,
        description="Label of this corpus in run keys and the `target` column; default: KIND.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"spec": data}
        return data

    @field_validator("spec")
    @classmethod
    def _check_spec(cls, value: str) -> str:
        kind, sep, _ = value.partition(":")
        if not sep or not kind.strip():
            raise ValueError(f"corpus spec {value!r} is not KIND:ROOT; write e.g. "
                             "'ravdess:/data/ravdess'")
        return value

    @property
    def kind(self) -> str:
        """The adapter name before the colon."""
        return self.spec.partition(":")[0].strip()

    @property
    def root(self) -> str:
        """The folder after the colon (resolved once loaded through :func:`load_config`)."""
        return self.spec.partition(":")[2].strip()

    @property
    def label(self) -> str:
        """``name`` if given, else ``kind``."""
        return self.name or self.kind


class FeatureConfig(_Strict):
    """Which frozen speech representation feeds the models."""

    frontend: str = Field(
        default="whisper-base",
        description="Registered frontend of `fairser.features` (whisper-base, whisper-tiny.en, "
        "logmel, egemaps-lld, egemaps-functionals, compare-lld, hf:<model>).",
    )
    layers: list[int] | Literal["all"] | None = Field(
        default=None,
        description="Encoder layers kept (a list of indices or `all`); null = the frontend's "
        "default. Several layers are combined by the model's learnable softmax weighting.",
    )
    workers: int = Field(default=1, ge=1, le=256, description="Extraction worker processes.")
    cache_dir: Path | None = Field(
        default=None,
        description="Feature store folder; null = `$FAIRSER_CACHE` or `~/.cache/fairser`.",
    )
    device: DeviceName = Field(
        default="auto",
        description="Where neural frontends (Whisper, `hf:`) extract: auto (CUDA, then MPS, "
        "else CPU), cpu, cuda, cuda:N or mps; per-file frontends always use the CPU. Not part "
        "of fit ids (`fairser run --device` sets it and `training.device`).",
    )
    precision: str = Field(
        default="fp32",
        description="Compute precision of neural frontends: fp32, bf16 or fp16 (autocast; fp16 "
        "runs as fp32 on the CPU). Part of the feature store's key, and of fit ids when not "
        "fp32, since it changes the features.",
    )
    batch_seconds: float | None = Field(
        default=None, gt=0.0,
        description="Padded audio seconds per neural batch (bounds peak memory); null = the "
        "extractor's default, 60 on the CPU and 600 on a GPU. Not part of fit ids (features "
        "equal their unbatched ones to float rounding).",
    )

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, value: str) -> str:
        if value not in PRECISIONS:
            raise ValueError(f"precision {value!r} is not one of {' | '.join(PRECISIONS)}")
        return value


class SubsampleSpec(_Strict):
    """One source condition (see the module docstring for the exact definition)."""

    name: str | None = Field(
        default=None,
        description="Label in the `condition` column; default `all` for keep 1.0, else e.g. "
        "`F30` (gender and percentage kept).",
    )
    gender: Literal["M", "F"] = Field(default="F",
                                      description="Gender whose positive-class rows are thinned.")
    keep: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="Fraction of those rows kept (1.0 = untouched source).",
    )
    emotion: str | None = Field(
        default=None,
        description="Emotion whose rows are thinned; null = the run's emotion (binary task).",
    )
    seed: Seed = Field(default=0, description="Seed of the draw (fixed across methods/seeds).")

    @property
    def label(self) -> str:
        """The condition's name in results."""
        if self.name:
            return self.name
        if self.keep >= 1.0:
            return "all"
        pct = f"{self.keep * 100:.0f}"
        return f"{self.gender}{pct}" + (f"-{self.emotion}" if self.emotion else "")


class SourceSplitConfig(_Strict):
    """How source rows are split into train (fit), dev (model selection) and test (evaluation)."""

    mode: Literal["auto", "manifest", "speakers", "groups"] = Field(
        default="auto",
        description="`manifest`: use the corpus's split column; `speakers`: a seeded "
        "speaker-disjoint, gender-stratified split by the fractions below; `groups`: a seeded "
        "split of the values of `group_column` (e.g. CASIA's `text_id`: sentence-disjoint but "
        "NOT speaker-disjoint, for corpora with too few speakers); `auto`: the manifest's "
        "split when it has train, dev and test rows, else `speakers`.",
    )
    group_column: str = Field(default="text_id",
                              description="Manifest column split by mode `groups`.")
    dev_fraction: float = Field(default=0.15, gt=0.0, lt=0.5,
                                description="Share of speakers of each gender (or of groups) "
                                "in dev.")
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5,
                                 description="Share of speakers of each gender (or of groups) "
                                 "in test.")
    seed: Seed = Field(default=0, description="Seed of the speaker split.")


class TargetSplitConfig(_Strict):
    """Which target rows adapt the model (without emotion labels) and which are evaluated."""

    mode: Literal["transductive", "manifest", "speakers"] = Field(
        default="transductive",
        description="`transductive`: all target rows adapt and all are evaluated; `manifest`: "
        "adapt on `train` rows, evaluate `test` rows; `speakers`: hold out speakers.",
    )
    eval_speakers_per_gender: int = Field(
        default=1, ge=1, description="Speakers of each gender held out (mode `speakers`).")
    seed: Seed = Field(default=0, description="Seed choosing the held-out speakers.")


class BootstrapConfig(_Strict):
    """Speaker-level bootstrap confidence intervals."""

    n_resamples: int = Field(default=1000, ge=0, le=1_000_000,
                             description="Bootstrap resamples per evaluation (0 = no CIs).")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="CI level.")
    seed: Seed = Field(default=0, description="Seed of the resampling.")


class ProbeConfig(_Strict):
    """The independent gender probe (logistic regression, speaker-disjoint folds)."""

    enabled: bool = Field(default=True, description="Compute `probe` for every evaluation.")
    reference: bool = Field(
        default=True,
        description="Also probe the mean-pooled input features of each corpus once (the "
        "reference the learned embeddings are compared with).",
    )
    max_rows: int = Field(default=2000, ge=20,
                          description="Rows per corpus used by the probe (seeded subsample).")
    mlp: bool = Field(
        default=False,
        description="Also compute `probe_mlp`: a small MLP gender probe on the embeddings "
        "(`fairser.metrics.probe.mlp_gender_probe`, same speaker-disjoint folds), which reads "
        "gender that is encoded non-linearly; about 10 s per evaluation on 600 rows of 64 "
        "dimensions on one busy core. Off: the column is empty.")
    mlp_max_rows: int = Field(default=600, ge=20,
                              description="Rows per corpus used by the MLP probe (seeded "
                              "subsample).")

    def hashed(self) -> dict[str, Any]:
        """The options that change a fit's result (the MLP ones only while ``mlp`` is on, so
        runs from before it existed keep their ids)."""
        out = self.model_dump(mode="json")
        if not self.mlp:
            out.pop("mlp")
            out.pop("mlp_max_rows")
        return out


class SweepConfig(_Strict):
    """Optional sweeps over training options (e.g. alpha, beta), crossed with the grid."""

    params: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Training option -> values; the grid runs the Cartesian product.",
    )
    methods: list[str] | None = Field(
        default=None,
        description="Methods the sweep applies to; null = every method except source-only. "
        "Other methods run once with the plain training options.",
    )

    @field_validator("params")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"sweep parameter {key!r} has no values; give a list of "
                                 "at least one value or remove it")
        return value


class MethodVariant(_Strict):
    """A named variant of a registered method: its own training options on top of the grid's.

    Written in ``methods:`` as a mapping, e.g. ``{name: recommended, method: pa, training:
    {input_norm: per-speaker, thresholds: parity}}``. The variant's ``name`` is what results,
    the report, ``predict`` and the provenance show; ``method`` is what is trained.
    """

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
                      description="Name shown in results and the report (letters, digits, "
                      "`.`, `_`, `+`, `-`); must not be a registered method's name.")
    method: str = Field(min_length=1, description="The registered method it trains.")
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of `fairser.training.TrainConfig` that override the grid's "
        "`training:` block for this variant (unknown keys are errors).")

    @model_validator(mode="after")
    def _no_seed(self) -> MethodVariant:
        if self.training.get("seed") is not None:
            raise ValueError(f"variant {self.name!r} sets training.seed; the grid sets "
                             "it, list seeds under `seeds`")
        return self
