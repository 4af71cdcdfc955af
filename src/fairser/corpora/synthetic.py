"""A built-in, **synthetic** emotional speech corpus pair with a known gender bias.

This is not recorded speech. Every utterance is rendered by the espeak-ng formant synthesiser
(the library and voices bundled by the ``espeakng-loader`` package, driven through
:mod:`fairser.corpora._espeak`), and the emotion is nothing but a prosody rule in the spirit of
classic rule-based emotional synthesis (Murray & Arnott, 1993):

========  =========  ===========  ===========  ============
emotion   rate       pitch        pitch range  loudness
========  =========  ===========  ===========  ============
neutral   medium     medium       medium       medium
happy     a bit fast high         wide         a bit loud
sad       slow       low          narrow       quiet
angry     fast       a bit high   wide         loud
========  =========  ===========  ===========  ============

Every utterance gets random jitter on all four cues (and a random sentence, onset pad and
noise floor) so the classes overlap and the task is not trivially separable; speakers differ by
espeak voice variant (``en+m3``, ``cmn+f2``, ...), base pitch and speaking rate.

Two corpora are generated, with ``speakers_per_gender`` male and female voices each:

- ``synth-en`` (**source**, English, spec ``synthetic-source:ROOT``): deliberately *biased*:
  about ``bias`` (default 80 %) of the angry utterances are male and the same share of happy
  and sad utterances are female (neutral is balanced), so a naive model can learn "male voice
  -> angry" as a shortcut;
- ``synth-zh`` (**target**, Mandarin, spec ``synthetic-target:ROOT``): gender-balanced in
  every emotion, so the shortcut costs accuracy and fairness there.

Both carry official speaker-disjoint splits with both genders in train, dev and test. The
audio is 16 kHz 16-bit FLAC under ``ROOT/synthetic-<key>/`` where ``<key>`` hashes the
generator's settings, the seed, this generator's version and the espeak-ng version; a complete
folder is reused, and a folder is only ever published whole (built in a temporary folder, then
renamed). The same seed gives the same files, byte for byte (each corpus is rendered in a fresh
worker process with espeak-ng's random generator seeded per utterance). Each corpus folder
also holds ``metadata.csv`` (one row per file: relative ``file``, speaker, gender, emotion,
split, text and the prosody settings used), readable with the ``csv`` adapter
(``-o 'columns={"path": "file"}'``).

How hard it is (default settings, seed 0): a logistic regression on 14 crude spectral and energy
statistics, trained on the source's train split, reaches a UAR of about 0.87 on the source test
split and 0.69 on the target, and predicts angry for about 32 % of target men but 14 % of target
women (the truth is 25 % for both): the planted shortcut, measurable.

What it is good for: tests, the demo, and checking that a debiasing method finds and removes a
bias whose size is known. What it is not: evidence about human emotional speech.

This module owns the pair's cache (folder key, build in a temporary folder, publish whole),
the worker processes, the manifests and the two corpus adapters; the settings, prosody rules,
per-utterance plan and rendering live in :mod:`fairser.corpora._synth_render` (its public
names are re-exported here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from pydantic import Field

from fairser._paths import default_cache_dir
from fairser.corpora._base import (
    Adapter,
    CorpusOptions,
    Problem,
    RawUtterance,
    build_manifest,
    parse_options,
)
from fairser.corpora._espeak import start_worker, worker_error
from fairser.corpora._espeak import version as espeak_version
from fairser.corpora._synth_render import (
    EMOTION_RULES,
    GENERATOR_VERSION,
    SOURCE_NAME,
    SYNTH_EMOTIONS,
    TARGET_NAME,
    SynthConfig,
    write_corpus,
)
from fairser.errors import CorpusError

__all__ = [
    "EMOTION_RULES",
    "SOURCE_ADAPTER",
    "SOURCE_NAME",
    "SynthConfig",
    "SyntheticOptions",
    "TARGET_ADAPTER",
    "TARGET_NAME",
    "generate_pair",
    "pair_dir",
    "write_corpus",
]


class SyntheticOptions(CorpusOptions):
    """Options of ``synthetic-source`` / ``synthetic-target`` (``seed`` is the generator seed)."""

    utterances: int = Field(default=320, description="Utterances per corpus.")
    speakers_per_gender: int = Field(default=6, description="Voices per gender per corpus.")
    bias: float = Field(default=0.8, description="Source share of angry utterances by men and "
                        "of happy/sad ones by women.")
    jitter: float = Field(default=1.0, description="Scale of the per-utterance prosody jitter.")

    def config(self) -> SynthConfig:
        """Return the generator settings these options describe."""
        return SynthConfig(utterances=self.utterances,
                           speakers_per_gender=self.speakers_per_gender, bias=self.bias,
                           jitter=self.jitter)


# ----------------------------------------------------------------------------- generation


def _key(cfg: SynthConfig, seed: int) -> str:
    payload = json.dumps({"config": asdict(cfg), "seed": int(seed), "version": GENERATOR_VERSION,
                          "espeak": espeak_version()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def pair_dir(root: str | Path | None = None, *, seed: int = 0,
             config: SynthConfig | None = None) -> Path:
    """Return the folder that holds (or will hold) the pair for these settings.

    Parameters
    ----------
    root : str or Path, optional
        Parent folder; default ``default_cache_dir() / "synthetic"``.
    seed : int, default=0
        Generator seed.
    config : SynthConfig, optional
        Generator settings (default :class:`SynthConfig()`).
    """
    cfg = config or SynthConfig()
    base = Path(root).expanduser() if root not in (None, "") else default_cache_dir() / "synthetic"
    return base / f"synthetic-{_key(cfg, seed)}"


def _run_workers(tmp: Path, cfg: SynthConfig, seed: int, *, progress: bool) -> None:
    procs = [(name, start_worker({"task": "corpus", "folder": str(tmp / name), "corpus": name,
                                  "seed": int(seed), "config": asdict(cfg)},
                                 stdout=subprocess.DEVNULL))
             for name in (SOURCE_NAME, TARGET_NAME)]
    total = 2 * (cfg.utterances // len(SYNTH_EMOTIONS) * len(SYNTH_EMOTIONS))
    try:
        with _progress(progress, total) as bar:
            while any(p.poll() is None for _, p in procs):
                if bar is not None:
                    bar(sum(1 for _ in tmp.glob(f"*/*/*.{cfg.audio_format}")))
                time.sleep(0.1)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
    for name, p in procs:
        err = p.stderr.read() if p.stderr else ""
        if p.returncode != 0:
            raise worker_error(f"generating {name}", p.returncode, err)


def _ensure_pair(root: str | Path | None, seed: int, cfg: SynthConfig, *, progress: bool) -> Path:
    final = pair_dir(root, seed=seed, config=cfg)
    if (final / "complete.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        _run_workers(tmp, cfg, seed, progress=progress)
        meta = {"config": asdict(cfg), "seed": int(seed), "version": GENERATOR_VERSION,
                "espeak": espeak_version(), "corpora": [SOURCE_NAME, TARGET_NAME]}
        (tmp / "complete.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "complete.json").is_file():  # not a concurrent twin: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("synthesising the synthetic corpus pair", total=total)
        yield lambda done: bar.update(task, completed=done)


def _read_records(folder: Path, name: str) -> tuple[list[RawUtterance], list[Problem]]:
    meta_path = folder / "metadata.csv"
    if not meta_path.is_file():
        raise CorpusError(f"{meta_path}: synthetic metadata missing; delete {folder.parent} and "
                          "generate the pair again")
    meta = pd.read_csv(meta_path, dtype=str, keep_default_na=False)
    records = []
    for i, row in enumerate(meta.to_dict("records")):
        records.append(RawUtterance(
            utt_id=row["utt_id"], path=folder / row["file"], speaker=row["speaker"],
            gender=row["gender"], emotion=row["emotion"], split=row["split"],
            extras={"text_id": row["text_id"], "text": row["text"], "voice": row["voice"]},
            source=str(meta_path), line=i + 2,
        ))
    return records, []


def _build(adapter: Adapter, folder: Path) -> pd.DataFrame:
    records, problems = _read_records(folder, adapter.name)
    scan = build_manifest(adapter, folder, parse_options(SyntheticOptions, None,
                                                         kind=adapter.name),
                          records, problems, spec=f"{adapter.name}:{folder}")
    scan.raise_for_problems()
    return scan.manifest


def generate_pair(root: str | Path | None = None, *, seed: int = 0,
                  config: SynthConfig | None = None,
                  progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate (or reuse) the synthetic source/target pair and return both manifests.

    Parameters
    ----------
    root : str or Path, optional
        Parent folder of the cache; default ``default_cache_dir() / "synthetic"``.
    seed : int, default=0
        Generator seed: same seed and settings, same files.
    config : SynthConfig, optional
        Generator settings (default :class:`SynthConfig()`: 320 utterances per corpus,
        6 + 6 speakers, 80 % bias).
    progress : bool, default=False
        Show a rich progress bar while synthesising.

    Returns
    -------
    source, target : pandas.DataFrame
        Manifests of ``synth-en`` (biased, English) and ``synth-zh`` (balanced, Mandarin), with
        extras ``text_id``, ``text`` and ``voice``.

    Raises
    ------
    CorpusError
        When espeak-ng cannot be loaded or fails.
    """
    cfg = config or SynthConfig()
    folder = _ensure_pair(root, seed, cfg, progress=progress)
    return _build(SOURCE_ADAPTER, folder / SOURCE_NAME), _build(TARGET_ADAPTER,
                                                                folder / TARGET_NAME)


def _scan(name: str):
    def scan(root: Path | None, opts: SyntheticOptions) -> tuple[list[RawUtterance],
                                                                  list[Problem]]:
        folder = _ensure_pair(root, opts.seed, opts.config(), progress=False)
        return _read_records(folder / name, name)

    scan.__doc__ = f"Generate the pair if needed and return the {name} records."
    return scan


_SYNTH_MAP = {e: e for e in SYNTH_EMOTIONS}

SOURCE_ADAPTER = Adapter(
    name=SOURCE_NAME, scan=_scan(SOURCE_NAME), options=SyntheticOptions,
    label_map=lambda opts: _SYNTH_MAP, language="en", official_splits=True,
    description="built-in synthetic English source corpus (espeak-ng, gender-biased)",
)
TARGET_ADAPTER = Adapter(
    name=TARGET_NAME, scan=_scan(TARGET_NAME), options=SyntheticOptions,
    label_map=lambda opts: _SYNTH_MAP, language="zh", official_splits=True,
    description="built-in synthetic Mandarin target corpus (espeak-ng, gender-balanced)",
)
