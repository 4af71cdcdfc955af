"""Manifest -> frame-level features in a content-hashed, resumable, memory-mapped store.

>>> fs = extract(manifest, "whisper-base", layers="all")     # doctest: +SKIP
>>> fs["ravdess/03-01-05-01-01-01-01"].shape                  # doctest: +SKIP
(7, 165, 512)

Frontends (one module each, registered in :mod:`fairser.features.registry`):
``whisper-base``, ``whisper-tiny.en`` (:mod:`~fairser.features.whisper`), ``hf:<model>``
(:mod:`~fairser.features.hf`), ``egemaps-lld``, ``compare-lld``, ``egemaps-functionals``
(:mod:`~fairser.features.opensmile`) and ``logmel`` (:mod:`~fairser.features.logmel`).
The store format and its rationale are described in :mod:`fairser.features.store`; every read
is checked (:mod:`fairser.features.entry`), extraction can be split into shards
(:mod:`fairser.features.shard`), and neural frontends take a device and a precision
(:class:`fairser.features.base.Runtime`).
"""

from __future__ import annotations

from fairser.corpora import utt_key  # the one utterance key, re-exported
from fairser.features.base import Frontend, normalize_layers
from fairser.features.extract import extract
from fairser.features.featureset import ExtractStats, FeatureSet
from fairser.features.registry import FRONTENDS, build_frontend, frontend_names

__all__ = [
    "FRONTENDS",
    "ExtractStats",
    "FeatureSet",
    "Frontend",
    "build_frontend",
    "extract",
    "frontend_names",
    "normalize_layers",
    "utt_key",
]
