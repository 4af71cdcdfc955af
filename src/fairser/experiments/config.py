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

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from fairser._config_io import expand_path, line_of, read_yaml, validation_message
from fairser.corpora import EMOTIONS
from fairser.errors import ConfigError
from fairser.experiments.sections import (
    MAX_SEED,
    BootstrapConfig,
    CorpusConfig,
    FeatureConfig,
    MethodVariant,
    ProbeConfig,
    Seed,
    SourceSplitConfig,
    SubsampleSpec,
    SweepConfig,
    TargetSplitConfig,
    _Strict,
)

__all__ = [
    "MAX_SEED",
    "BootstrapConfig",
    "CorpusConfig",
    "ExperimentConfig",
    "FeatureConfig",
    "MethodVariant",
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

def _entry_kind(value: Any) -> str:
    return "name" if isinstance(value, str) else "variant"


#: One ``methods:`` entry: a registered method's name or a :class:`MethodVariant` mapping.
MethodEntry = Annotated[
    Annotated[str, Tag("name")] | Annotated[MethodVariant, Tag("variant")],
    Discriminator(_entry_kind),
]


class ExperimentConfig(_Strict):
    """A whole experiment: the grid, the data, the training options and the outputs."""

    name: str = Field(default="experiment", min_length=1, max_length=100,
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
    methods: list[MethodEntry] = Field(
        default_factory=_all_methods, min_length=1,
        description="Methods to run: names of the training registry (default every registered "
        "method, `fairser.methods.METHODS`) or named variants `{name: N, method: M, training: "
        "{...}}` whose `training` overrides the grid's `training:` block.")
    seeds: list[Seed] = Field(default_factory=lambda: [0, 1, 2], min_length=1,
                              description="Training seeds (integers from 0 to 2**32 - 1).")
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
    linear_baseline_norm: Literal["per-corpus", "source", "per-speaker",
                                  "per-speaker-frames"] = Field(
        default="per-corpus",
        description="z-norm of the floor's features: `per-corpus` standardises the source with "
        "its train rows' statistics and each target with its adaptation rows' statistics "
        "(unlabelled, as the adapted models see them); `source` uses the source train "
        "statistics everywhere; `per-speaker` standardises each (corpus, speaker) with the "
        "statistics of its own mean-pooled utterances (issue 10's reference), "
        "`per-speaker-frames` with those of its frames (as `input_norm: per-speaker` "
        "standardises the models' inputs); per speaker, the statistics come from its source "
        "train rows in training, and from its evaluated rows (target: with the adaptation "
        "rows) when scoring; audio only, never labels.",
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
        unknown = [e for e in value if e not in EMOTIONS]
        if unknown:
            raise ValueError(f"unknown emotion(s) {unknown}; use the canonical names "
                             f"{', '.join(EMOTIONS)}")
        if len(set(value)) != len(value):
            raise ValueError("emotions are listed twice; list each once")
        return value

    @field_validator("methods")
    @classmethod
    def _unique_methods(cls, value: list[str | MethodVariant]) -> list[str | MethodVariant]:
        names = [m if isinstance(m, str) else m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError("methods are listed twice; list each once (give each variant a "
                             "distinct `name`)")
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
            stray = [m for m in self.sweep.methods if m not in self.method_names()]
            if stray:
                raise ValueError(f"sweep.methods {stray} are not in methods "
                                 f"{self.method_names()}")
        if self.training.get("seed") is not None:
            raise ValueError("training.seed is set by the grid; list seeds under `seeds`")
        return self

    # ----------------------------------------------------------------------------------------
    def method_names(self) -> list[str]:
        """The method axis of the grid: registered names and variant names, as listed."""
        return [m if isinstance(m, str) else m.name for m in self.methods]

    def variant(self, name: str) -> MethodVariant | None:
        """The variant called ``name``, or None for a registered method (or an unknown name)."""
        return next((m for m in self.methods
                     if isinstance(m, MethodVariant) and m.name == name), None)

    def base_method(self, name: str) -> str:
        """The registered method that ``name`` (a method or a variant) trains."""
        found = self.variant(name)
        return name if found is None else found.method

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
        if self.sweep.methods is None:
            applies = self.base_method(method) != "source-only"
        else:
            applies = method in self.sweep.methods
        if not applies:
            return [{}]
        points: list[dict[str, Any]] = [{}]
        for key, values in params.items():
            points = [{**p, key: v} for p in points for v in values]
        return points


def _single_run_hint(data: dict[str, Any], source: str) -> None:
    if "targets" not in data and ("target" in data or "method" in data):
        raise ConfigError(f"{source}: this is a single-run config (it has 'target' or "
                          f"'method'); train it with `fairser train {source}`, or write "
                          "'targets:' and 'methods:' for a grid")


def parse_config(data: Any, *, base_dir: Path | str = ".", source: str = "<config>",
                 node: yaml.Node | None = None) -> ExperimentConfig:
    """Validate a mapping as an :class:`ExperimentConfig` and resolve its paths.

    Corpus roots and ``features.cache_dir`` get ``$VAR`` / ``${VAR}`` and ``~`` expanded and
    are resolved against ``base_dir`` (:func:`fairser._config_io.expand_path`).

    Parameters
    ----------
    data : mapping
        The parsed YAML (or an equivalent dict).
    base_dir : path, default="."
        Folder against which relative paths are resolved.
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
        On any invalid, missing or unknown key or value, or an unset environment variable:
        one line naming the file, the line, the key and the fix.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping (key: value lines); "
                          "see configs/shared/baseline.yaml for an example")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        _single_run_hint(data, source)
        raise ConfigError(validation_message(exc, source=source, node=node,
                                             model=ExperimentConfig)) from None
    base = Path(base_dir)

    def where(*loc: Any) -> str:
        line = line_of(node, loc)
        return f"{source}:{line}: {'.'.join(map(str, loc))}" if line else \
            f"{source}: {'.'.join(map(str, loc))}"

    def resolve(corpus: CorpusConfig, loc: tuple[Any, ...]) -> CorpusConfig:
        if not corpus.root:
            return corpus
        root = expand_path(corpus.root, base, where=where(*loc))
        return corpus.model_copy(update={"spec": f"{corpus.kind}:{root}"})

    source_c = resolve(cfg.source, ("source",))
    targets = [resolve(t, ("targets", i)) for i, t in enumerate(cfg.targets)]
    for i, target in enumerate(targets):
        if target.spec == source_c.spec:
            raise ConfigError(f"{where('targets', i)}: the target is the source corpus "
                              f"({target.spec}); cross-corpus transfer needs another corpus "
                              "as the target")
        if target.label == source_c.label:
            raise ConfigError(f"{where('targets', i)}: the target is labelled "
                              f"{target.label!r} like the source; give it another `name` (or "
                              "use another corpus as the target)")
    features = cfg.features
    if features.cache_dir is not None:
        cache = expand_path(str(features.cache_dir), base, where=where("features", "cache_dir"))
        features = features.model_copy(update={"cache_dir": cache})
    return cfg.model_copy(update={"source": source_c, "targets": targets, "features": features})


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file (:func:`fairser._config_io.read_yaml`).

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
        Missing, unreadable or non-UTF-8 file, invalid YAML, a key written twice, or an
        invalid config (the message names the file, the line, the key and the fix).
    """
    doc = read_yaml(path)
    return parse_config(doc.data, base_dir=doc.path.resolve().parent, source=str(doc.path),
                        node=doc.node)
