"""Experiment configuration: pydantic models loaded from YAML, unknown keys are errors.

An experiment is a grid ``method x emotion x seed x target x source condition x sweep point``.
Every option has a default and a description (``fairser run --help`` points here), and every
validation failure becomes one :class:`~fairser.errors.ConfigError` line naming the file, the
line of the offending key and the fix.

Definitions fixed here (they are part of what a result means):

``source_subsample``
    A list of *source conditions*. A condition with ``keep: 1.0`` leaves the source untouched.
    Otherwise, in the source **train** split only, the utterances of gender ``gender`` whose
    emotion is the run's emotion (the positive class of the binary task; every emotion of the
    config for ``task: multiclass`` unless ``emotion`` names one) are subsampled to
    ``round(keep * n)`` of them, drawn uniformly without replacement with seed
    ``seed`` (the same rows for every method and training seed, so methods are compared on the
    same data). The dev and test splits are never subsampled: model selection and the source
    evaluation stay on the corpus as recorded.

``target_split``
    Which target rows take part in training (gender labels only, never emotion labels) and
    which are evaluated. ``transductive`` (the default) uses all target audio unlabelled in
    training and evaluates on all target rows: the usual unsupervised-adaptation protocol, and
    the only one that keeps both genders of a 4-speaker corpus such as CASIA on both sides;
    emotion labels of the target are never seen. ``manifest`` adapts on the target's ``train``
    rows and evaluates on its ``test`` rows. ``speakers`` holds out ``eval_speakers_per_gender``
    speakers of each gender for evaluation and adapts on the rest (speaker-disjoint; on CASIA
    that is a one-against-one speaker comparison).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fairser.errors import ConfigError

__all__ = [
    "BootstrapConfig",
    "CorpusConfig",
    "ExperimentConfig",
    "FeatureConfig",
    "ProbeConfig",
    "SourceSplitConfig",
    "SubsampleSpec",
    "SweepConfig",
    "TargetSplitConfig",
    "load_config",
    "parse_config",
]


def _all_methods() -> list[str]:
    """Every registered method, in registry order (``fairser.methods.METHODS``).

    Imported on use: the registry imports torch, and reading a config that lists its methods
    should not.
    """
    from fairser.methods import METHODS

    return list(METHODS)


def __getattr__(name: str) -> Any:
    # ALL_METHODS: the names of fairser.methods.METHODS, resolved lazily (PEP 562)
    if name == "ALL_METHODS":
        return tuple(_all_methods())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: The canonical emotion vocabulary of the manifest contract (docs/architecture.md).
CANONICAL_EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise", "contempt",
    "boredom", "other",
)

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class _Strict(BaseModel):
    """Base of every config model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


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
    workers: int = Field(default=1, ge=1, description="Extraction worker processes.")
    cache_dir: Path | None = Field(
        default=None,
        description="Feature store folder; null = `$FAIRSER_CACHE` or `~/.cache/fairser`.",
    )


class SubsampleSpec(_Strict):
    """One source condition (see the module docstring for the exact definition)."""

    name: str | None = Field(
        default=None,
        description="Label in the `condition` column; default `all` for keep 1.0, else e.g. "
        "`F30` (gender and percentage kept).",
    )
    gender: str = Field(default="F", description="Gender whose positive-class rows are thinned.")
    keep: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="Fraction of those rows kept (1.0 = untouched source).",
    )
    emotion: str | None = Field(
        default=None,
        description="Emotion whose rows are thinned; null = the run's emotion (binary task).",
    )
    seed: int = Field(default=0, description="Seed of the draw (fixed across methods/seeds).")

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
    seed: int = Field(default=0, description="Seed of the speaker split.")


class TargetSplitConfig(_Strict):
    """Which target rows adapt the model (without emotion labels) and which are evaluated."""

    mode: Literal["transductive", "manifest", "speakers"] = Field(
        default="transductive",
        description="`transductive`: all target rows adapt and all are evaluated; `manifest`: "
        "adapt on `train` rows, evaluate `test` rows; `speakers`: hold out speakers.",
    )
    eval_speakers_per_gender: int = Field(
        default=1, ge=1, description="Speakers of each gender held out (mode `speakers`).")
    seed: int = Field(default=0, description="Seed choosing the held-out speakers.")


class BootstrapConfig(_Strict):
    """Speaker-level bootstrap confidence intervals."""

    n_resamples: int = Field(default=1000, ge=0,
                             description="Bootstrap resamples per evaluation (0 = no CIs).")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="CI level.")
    seed: int = Field(default=0, description="Seed of the resampling.")


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


class ExperimentConfig(_Strict):
    """A whole experiment: the grid, the data, the training options and the outputs."""

    name: str = Field(default="experiment",
                      description="Experiment name; the default output folder is runs/NAME.")
    source: CorpusConfig = Field(description="The labelled source corpus.")
    targets: list[CorpusConfig] = Field(
        min_length=1, description="One or more target corpora (emotion labels never used).")
    emotions: list[str] = Field(
        default_factory=lambda: ["angry", "happy", "sad", "neutral"],
        min_length=1,
        description="Canonical emotions; binary task: one `emotion vs rest` run per entry.",
    )
    run_emotions: list[str] | None = Field(
        default=None,
        description="Binary task: the emotions that get a run (a subset of `emotions`); null = "
        "all. The other listed emotions stay in the data as negatives.",
    )
    task: Literal["binary", "multiclass"] = Field(
        default="binary", description="`binary` (one model per emotion) or `multiclass`.")
    restrict_emotions: bool = Field(
        default=True,
        description="Drop rows whose emotion is not in `emotions` (both corpora), so `rest` "
        "means the other listed emotions.",
    )
    features: FeatureConfig = Field(default_factory=FeatureConfig,
                                    description="Frontend and layers.")
    methods: list[str] = Field(default_factory=_all_methods, min_length=1,
                               description="Methods of the training registry to run; default "
                               "every registered method (`fairser.methods.METHODS`).")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1,
                             description="Training seeds.")
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of `fairser.training.TrainConfig` (unknown keys are errors).",
    )
    sweep: SweepConfig = Field(default_factory=SweepConfig, description="Optional sweeps.")
    source_subsample: list[SubsampleSpec] = Field(
        default_factory=lambda: [SubsampleSpec()],
        min_length=1,
        description="Source conditions (one mapping or a list); default: untouched source.",
    )
    source_split: SourceSplitConfig = Field(default_factory=SourceSplitConfig,
                                            description="Source train/dev/test split.")
    target_split: TargetSplitConfig = Field(default_factory=TargetSplitConfig,
                                            description="Target adaptation/evaluation rows.")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig,
                                       description="Confidence intervals.")
    probe: ProbeConfig = Field(default_factory=ProbeConfig, description="Gender probes.")
    linear_baseline: bool = Field(
        default=True,
        description="Add the `linear-baseline` floor (called `linear-probe` before): logistic "
        "regression on mean-pooled, z-normed input features, trained on the source train "
        "split.",
    )
    linear_baseline_norm: Literal["per-corpus", "source"] = Field(
        default="per-corpus",
        description="z-norm of the floor's features: `per-corpus` standardises the source with "
        "its train rows' statistics and each target with its adaptation rows' statistics "
        "(unlabelled, as the adapted models see them); `source` uses the source train "
        "statistics everywhere.",
    )
    save_models: bool = Field(default=True,
                              description="Save every fitted model (needed by `predict`).")
    embeddings_per_corpus: int = Field(
        default=300, ge=0,
        description="Rows per corpus whose embeddings are kept for the report's projection "
        "(first seed and emotion of each method); 0 = none.",
    )
    report: bool = Field(default=True, description="Write table.md and report.html.")

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            sub = data.get("source_subsample")
            if isinstance(sub, dict):
                data["source_subsample"] = [sub]
            targets = data.get("targets")
            if isinstance(targets, str | dict):
                data["targets"] = [targets]
        return data

    @field_validator("emotions")
    @classmethod
    def _known_emotions(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in CANONICAL_EMOTIONS]
        if unknown:
            raise ValueError(f"unknown emotion(s) {unknown}; use the canonical names "
                             f"{', '.join(CANONICAL_EMOTIONS)}")
        if len(set(value)) != len(value):
            raise ValueError("emotions are listed twice; list each once")
        return value

    @field_validator("methods")
    @classmethod
    def _unique_methods(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("methods are listed twice; list each once")
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("seeds are listed twice; list each once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        labels = [t.label for t in self.targets]
        if len(set(labels)) != len(labels):
            raise ValueError(f"target names {labels} repeat; give each target a distinct `name`")
        conds = [c.label for c in self.source_subsample]
        if len(set(conds)) != len(conds):
            raise ValueError(f"source_subsample names {conds} repeat; give each a distinct "
                             "`name`")
        for cond in self.source_subsample:
            if cond.emotion is not None and cond.emotion not in self.emotions:
                raise ValueError(f"source_subsample emotion {cond.emotion!r} is not in "
                                 f"emotions {self.emotions}")
        if self.task == "binary" and len(self.emotions) < 2 and self.restrict_emotions:
            raise ValueError("a binary task with restrict_emotions needs at least two emotions "
                             "(the positive class and the rest)")
        if self.run_emotions is not None:
            stray = [e for e in self.run_emotions if e not in self.emotions]
            if stray or not self.run_emotions:
                raise ValueError(f"run_emotions {self.run_emotions} must be a non-empty subset "
                                 f"of emotions {self.emotions}")
        if self.sweep.methods is not None:
            stray = [m for m in self.sweep.methods if m not in self.methods]
            if stray:
                raise ValueError(f"sweep.methods {stray} are not in methods {self.methods}")
        if self.training.get("seed") is not None:
            raise ValueError("training.seed is set by the grid; list seeds under `seeds`")
        return self

    # ----------------------------------------------------------------------------------------
    def grid_emotions(self) -> list[str]:
        """The emotion axis of the grid: each emotion (binary) or ``["all"]`` (multiclass)."""
        if self.task == "multiclass":
            return ["all"]
        return list(self.run_emotions) if self.run_emotions is not None else list(self.emotions)

    def sweep_points(self, method: str) -> list[dict[str, Any]]:
        """Sweep settings for ``method``: ``[{}]`` when no sweep applies to it."""
        params = self.sweep.params
        if not params:
            return [{}]
        applies = (self.sweep.methods is None and method != "source-only") or (
            self.sweep.methods is not None and method in self.sweep.methods)
        if not applies:
            return [{}]
        points: list[dict[str, Any]] = [{}]
        for key, values in params.items():
            points = [{**p, key: v} for p in points for v in values]
        return points


def _expand(root: str, base: Path, *, where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        var = match.group(1) or match.group(2)
        if var not in os.environ:
            raise ConfigError(f"{where}: environment variable ${var} is not set; set it to the "
                              "corpus folder or write the path into the config")
        return os.environ[var]

    path = Path(os.path.expanduser(_ENV.sub(sub, root)))
    if not path.is_absolute():
        path = base / path
    return str(path.resolve())


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one found)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    nxt = value
                    line = key.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _describe(exc: ValidationError, source: str, node: yaml.Node | None) -> str:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {
        "function-after[_from_string(), CorpusConfig]", "list[int]", "literal['all']"}))
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    dotted = ".".join(str(p) for p in loc) or "<top>"
    line = _line_of(node, loc)
    where = f"{source}:{line}" if line else source
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key; remove it or check the spelling (see `fairser run --help`)"
    elif err["type"] == "missing":
        msg = "required key is missing; add it"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {dotted}: {msg}{more}"


def parse_config(data: Any, *, base_dir: Path | str = ".", source: str = "<config>",
                 node: yaml.Node | None = None) -> ExperimentConfig:
    """Validate a mapping as an :class:`ExperimentConfig` and resolve corpus roots.

    Parameters
    ----------
    data : mapping
        The parsed YAML (or an equivalent dict).
    base_dir : path, default="."
        Folder against which relative corpus roots are resolved.
    source : str, default="<config>"
        Name used in error messages (the file path).
    node : yaml.Node, optional
        Composed YAML tree, used to point errors at a line.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        On any invalid, missing or unknown key, or an unset environment variable.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping (key: value lines); "
                          "see configs/shared/baseline.yaml for an example")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        if "targets" not in data and ("target" in data or "method" in data):
            raise ConfigError(f"{source}: this is a single-run config (it has 'target' or "
                              f"'method'); train it with `fairser train {source}`, or write "
                              "'targets:' and 'methods:' for a grid") from None
        raise ConfigError(_describe(exc, source, node)) from None
    base = Path(base_dir)

    def resolve(corpus: CorpusConfig, where: str) -> CorpusConfig:
        if not corpus.root:
            return corpus
        root = _expand(corpus.root, base, where=where)
        return corpus.model_copy(update={"spec": f"{corpus.kind}:{root}"})

    source_c = resolve(cfg.source, f"{source}: source")
    targets = [resolve(t, f"{source}: targets.{i}") for i, t in enumerate(cfg.targets)]
    features = cfg.features
    if features.cache_dir is not None and not features.cache_dir.is_absolute():
        features = features.model_copy(update={"cache_dir": (base / features.cache_dir).resolve()})
    return cfg.model_copy(update={"source": source_c, "targets": targets, "features": features})


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file.

    Relative corpus roots and ``features.cache_dir`` are resolved against the file's folder.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        Missing or unparsable file, or an invalid config (message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}); save the YAML "
                          "config as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}{line}: invalid YAML ({problem}); fix the syntax") from None
    return parse_config(data, base_dir=path.resolve().parent, source=str(path), node=node)
