"""Options every corpus adapter accepts, and their validation.

:class:`CorpusOptions` holds the shared options (label, gender and split maps, how to resolve a
speaker's conflicting genders, the seed and shares of assigned splits); an adapter subclasses it
to add its own. :func:`parse_options` turns a mapping into an options object, with one-line
errors for unknown keys and bad values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fairser.corpora._schema import EMOTIONS
from fairser.errors import ConfigError

__all__ = ["CorpusOptions", "parse_options"]


class CorpusOptions(BaseModel):
    """Options every corpus accepts (adapters subclass it to add their own).

    Unknown keys are errors. Pass them as ``load_corpus(spec, options={...})`` or on the command
    line as ``--option key=value`` (values parsed as JSON when they parse).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="Emotion codes of the corpus -> canonical emotion (or null for an explicit "
        "<NA>), merged over the adapter's default map; codes match case-sensitively.",
    )
    gender_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="Extra gender spellings -> 'M', 'F' or null (missing), merged over the "
        "built-in spellings (Male/Female/M/F/Unknown...); keys are compared lower-case.",
    )
    split_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="Extra split names -> 'train', 'dev', 'test' or null, merged over the "
        "built-in names (Train/Development/Test1...).",
    )
    resolve_gender: Literal["report", "majority"] = Field(
        default="report",
        description="What to do with a speaker whose rows carry both genders: 'report' them "
        "as gender-conflict problems (the rows disagreeing with the speaker's majority, or all "
        "its rows when there is no majority), or 'majority': give those rows the gender of "
        "most of the speaker's rows and list them as resolved (a tie stays a problem).",
    )
    seed: int = Field(
        default=0,
        description="Seed of the speaker-disjoint split assigned to corpora without official "
        "splits.",
    )
    split_fractions: tuple[float, float, float] = Field(
        default=(0.7, 0.15, 0.15),
        description="Target train/dev/test shares of speakers per gender for corpora without "
        "official splits (see fairser.corpora.assign_splits).",
    )

    @field_validator("label_map")
    @classmethod
    def _canonical_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = sorted({str(v) for v in value.values() if v is not None and v not in EMOTIONS})
        if bad:
            raise ValueError(
                f"label_map targets {bad} are not canonical emotions ({', '.join(EMOTIONS)})"
            )
        return value

    @field_validator("gender_map")
    @classmethod
    def _gender_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = sorted({str(v) for v in value.values() if v not in ("M", "F", None)})
        if bad:
            raise ValueError(f"gender_map targets {bad} must be 'M', 'F' or null")
        return value

    @field_validator("split_map")
    @classmethod
    def _split_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = sorted({str(v) for v in value.values() if v not in ("train", "dev", "test", None)})
        if bad:
            raise ValueError(f"split_map targets {bad} must be 'train', 'dev', 'test' or null")
        return value

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in value) or value[0] <= 0 or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("split_fractions must be three non-negative shares summing to 1 "
                             "with a positive train share")
        return value


def parse_options(cls: type[CorpusOptions], options: Mapping[str, Any] | None, *,
                  kind: str) -> CorpusOptions:
    """Validate ``options`` against ``cls``; unknown keys and bad values raise ConfigError."""
    if isinstance(options, cls):
        return options
    try:
        return cls.model_validate(dict(options or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "options"
        msg = first.get("msg", "invalid value")
        if first.get("type") == "extra_forbidden":
            known = ", ".join(sorted(cls.model_fields))
            raise ConfigError(
                f"{kind} options: unknown key {where!r}; known keys are {known}"
            ) from None
        raise ConfigError(f"{kind} options: {where}: {msg}; fix the option value") from None
