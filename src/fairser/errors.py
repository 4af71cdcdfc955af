"""Exceptions raised by fairser.

Every error a user can cause derives from :class:`FairserError`. Its message is one line that
names the file, the row and the fix; the CLI prints it without a traceback and exits non-zero.
"""

from __future__ import annotations


class FairserError(Exception):
    """Base class of every user-facing fairser error (one-line message, CLI exit code 2)."""

    exit_code: int = 2


class ConfigError(FairserError):
    """A configuration file or option is invalid."""


class CorpusError(FairserError):
    """A corpus folder, label file or manifest is invalid."""


class AudioError(FairserError):
    """An audio file cannot be read or holds unusable samples."""


class FeatureError(FairserError):
    """Feature extraction or the feature store failed for a reason the user can fix."""


class TrainingError(FairserError):
    """Training cannot run on the given data or configuration."""
