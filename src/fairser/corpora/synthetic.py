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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
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
from fairser.corpora._espeak import Espeak, open_session, start_worker, worker_error
from fairser.corpora._espeak import version as espeak_version
from fairser.errors import ConfigError, CorpusError

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

#: Corpus names (the manifest's ``corpus`` column) of the source and target corpora.
SOURCE_NAME = "synth-en"
TARGET_NAME = "synth-zh"

#: Bump when the generated audio changes for the same settings (part of the cache key).
GENERATOR_VERSION = 2

#: Emotions generated, in order.
SYNTH_EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry")

#: Prosody rule per emotion: espeak rate (words/min), pitch offset and range (0-100 scale),
#: loudness (dB relative to the reference level).
EMOTION_RULES: dict[str, dict[str, float]] = {
    "neutral": {"rate": 160.0, "pitch": 0.0, "range": 40.0, "gain_db": 0.0},
    "happy": {"rate": 182.0, "pitch": 14.0, "range": 78.0, "gain_db": 3.0},
    "sad": {"rate": 122.0, "pitch": -10.0, "range": 14.0, "gain_db": -7.0},
    "angry": {"rate": 205.0, "pitch": 5.0, "range": 70.0, "gain_db": 7.0},
}

# espeak's Mandarin voice speaks slowly at a given words/min setting: scale it to match English.
_LANG_RATE = {"en": 1.0, "zh": 1.3}

_MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m6", "m7", "m8", "m5")
_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")

_TEXTS: dict[str, tuple[str, ...]] = {
    "en": (
        "The door is open.", "We leave at noon.", "Put it on the table.",
        "The bus was late today.", "She found the red box.", "It is raining again.",
        "Call me in the morning.", "The shop closes at six.", "He painted the fence.",
        "Bring the blue chair.", "The train is full.", "They moved to the city.",
        "My keys are in the car.", "The letter came on Monday.", "Turn left at the corner.",
        "The soup is on the stove.",
    ),
    "zh": (
        "门开着。", "我们中午出发。", "把它放在桌子上。", "今天公共汽车晚了。",
        "她找到了红盒子。", "又下雨了。", "明天早上给我打电话。", "商店六点关门。",
        "他把篱笆刷了漆。", "把蓝椅子拿来。", "火车满了。", "他们搬到城里了。",
        "钥匙在车里。", "信是星期一来的。", "在路口向左转。", "汤在炉子上。",
    ),
}

_REF_DBFS = -24.0


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthetic pair (all part of the cache key).

    Attributes
    ----------
    utterances : int, default=320
        Utterances per corpus (rounded down to a multiple of 4, one share per emotion).
    speakers_per_gender : int, default=6
        Voices per gender per corpus (at least 3, so train, dev and test hold both genders).
    bias : float, default=0.8
        Source corpus: share of angry utterances spoken by men, and of happy and sad ones by
        women (0.5 = balanced). The target is always balanced.
    jitter : float, default=1.0
        Scale of the per-utterance random prosody jitter (0 = exact rules).
    sample_rate : int, default=16000
        Rate of the written files.
    audio_format : str, default="flac"
        ``"flac"`` or ``"wav"`` (16-bit PCM).
    """

    utterances: int = 320
    speakers_per_gender: int = 6
    bias: float = 0.8
    jitter: float = 1.0
    sample_rate: int = 16000
    audio_format: str = "flac"

    def __post_init__(self) -> None:
        if self.utterances < 8 * self.speakers_per_gender // 2 or self.utterances < 16:
            raise ConfigError(f"synthetic: utterances={self.utterances} is too small; use at "
                              f"least {max(16, 4 * self.speakers_per_gender)}")
        if self.speakers_per_gender < 3 or self.speakers_per_gender > 12:
            raise ConfigError(f"synthetic: speakers_per_gender={self.speakers_per_gender} must be "
                              "between 3 and 12 (train, dev and test need both genders)")
        if not 0.0 <= self.bias <= 1.0:
            raise ConfigError(f"synthetic: bias={self.bias} must be within [0, 1]")
        if self.jitter < 0:
            raise ConfigError(f"synthetic: jitter={self.jitter} must be >= 0")
        if self.audio_format not in ("flac", "wav"):
            raise ConfigError(f"synthetic: audio_format={self.audio_format!r} must be "
                              "'flac' or 'wav'")
        if self.sample_rate < 8000:
            raise ConfigError(f"synthetic: sample_rate={self.sample_rate} must be >= 8000")


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


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Speaker:
    speaker: str
    gender: str
    voice: str
    pitch: float
    rate_factor: float
    range_offset: float
    split: str


@dataclass(frozen=True)
class _Utt:
    utt_id: str
    speaker: _Speaker
    emotion: str
    text_id: int
    rate: int
    pitch: int
    pitch_range: int
    gain_db: float
    pad_s: float
    noise_dbfs: float


def _speakers(lang: str, espeak_lang: str, cfg: SynthConfig, rng: np.random.Generator) -> \
        list[_Speaker]:
    n = cfg.speakers_per_gender
    n_test = max(1, round(n / 6))
    n_dev = max(1, round(n / 6))
    out: list[_Speaker] = []
    for gender, variants, base in (("M", _MALE_VARIANTS, 42.0), ("F", _FEMALE_VARIANTS, 52.0)):
        order = rng.permutation(n)
        for i in range(n):
            rank = int(np.flatnonzero(order == i)[0])
            split = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
            out.append(_Speaker(
                speaker=f"{lang}-{gender.lower()}{i + 1}", gender=gender,
                voice=f"{espeak_lang}+{variants[i % len(variants)]}",
                pitch=base + rng.uniform(-10.0, 10.0), rate_factor=rng.uniform(0.9, 1.1),
                range_offset=rng.uniform(-8.0, 8.0), split=split,
            ))
    return out


def _counts(cfg: SynthConfig, *, biased: bool) -> dict[tuple[str, str], int]:
    per_emotion = cfg.utterances // len(SYNTH_EMOTIONS)
    out = {}
    for emo in SYNTH_EMOTIONS:
        share_m = 0.5
        if biased and emo == "angry":
            share_m = cfg.bias
        elif biased and emo in ("happy", "sad"):
            share_m = 1.0 - cfg.bias
        m = int(round(per_emotion * share_m))
        out[(emo, "M")] = m
        out[(emo, "F")] = per_emotion - m
    return out


def _plan(lang: str, espeak_lang: str, cfg: SynthConfig, seed: int, *, biased: bool) -> \
        list[_Utt]:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 1 if biased else 2])
    speakers = _speakers(lang, espeak_lang, cfg, rng)
    counts = _counts(cfg, biased=biased)
    utts: list[_Utt] = []
    per_speaker: dict[str, int] = {}
    j = cfg.jitter
    for gender in ("M", "F"):
        mine = [s for s in speakers if s.gender == gender]
        items = [emo for emo in SYNTH_EMOTIONS for _ in range(counts[(emo, gender)])]
        items = [items[i] for i in rng.permutation(len(items))]
        for k, emo in enumerate(items):
            spk = mine[k % len(mine)]
            rule = EMOTION_RULES[emo]
            idx = per_speaker.get(spk.speaker, 0)
            per_speaker[spk.speaker] = idx + 1
            utts.append(_Utt(
                utt_id=f"{spk.speaker}-{idx:03d}", speaker=spk, emotion=emo,
                text_id=int(rng.integers(len(_TEXTS[lang]))),
                rate=int(round(rule["rate"] * _LANG_RATE[lang] * spk.rate_factor
                               * np.exp(rng.normal(0, 0.08 * j)))),
                pitch=int(round(spk.pitch + rule["pitch"] + rng.normal(0, 5.0 * j))),
                pitch_range=int(round(rule["range"] + spk.range_offset + rng.normal(0, 10.0 * j))),
                gain_db=float(rule["gain_db"] + rng.normal(0, 2.0 * j)),
                pad_s=float(rng.uniform(0.05, 0.25)),
                noise_dbfs=float(-58.0 + rng.normal(0, 3.0)),
            ))
    return sorted(utts, key=lambda u: u.utt_id)


def _render(engine: Espeak, utt: _Utt, lang: str, cfg: SynthConfig, seed: int) -> np.ndarray:
    digest = hashlib.sha256(f"{seed}/{utt.utt_id}".encode()).digest()
    raw = engine.render(_TEXTS[lang][utt.text_id], voice=utt.speaker.voice, rate=utt.rate,
                        pitch=utt.pitch, pitch_range=utt.pitch_range,
                        rand_seed=int.from_bytes(digest[8:12], "little"))
    nz = np.flatnonzero(np.abs(raw) > 1e-3)
    if nz.size:  # trim espeak's own leading/trailing silence, then add our own pad
        raw = raw[max(0, nz[0] - 100): nz[-1] + 100]
    rms = float(np.sqrt(np.mean(raw.astype(np.float64) ** 2))) or 1e-6
    level = 10.0 ** ((_REF_DBFS + utt.gain_db) / 20.0)
    sig = raw * (level / rms)
    pad = np.zeros(int(utt.pad_s * engine.sample_rate), dtype=np.float32)
    tail = np.zeros(int(0.1 * engine.sample_rate), dtype=np.float32)
    sig = np.concatenate([pad, sig, tail]).astype(np.float32)
    out = soxr.resample(sig, engine.sample_rate, cfg.sample_rate, quality="HQ")
    noise_rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    out = out + noise_rng.normal(0.0, 10.0 ** (utt.noise_dbfs / 20.0), out.shape)
    return np.clip(out, -0.999, 0.999).astype(np.float32)


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


def write_corpus(folder: str | Path, *, corpus: str, seed: int, config: dict) -> None:
    """Synthesise one corpus of the pair into the new folder ``folder`` (worker entry point).

    espeak-ng keeps synthesis state in process-wide variables that ``espeak_Terminate`` does
    not fully reset, so the same text renders slightly differently after earlier renders in
    the same process. :func:`generate_pair` therefore runs this function in a fresh Python
    process per corpus (``python -m fairser.corpora._synth_worker``), which makes the files
    depend on the seed and settings only, and keeps espeak's state out of the caller.

    Parameters
    ----------
    folder : str or Path
        Folder to create (must not exist).
    corpus : str
        :data:`SOURCE_NAME` or :data:`TARGET_NAME`.
    seed : int
        Generator seed.
    config : dict
        :class:`SynthConfig` fields.
    """
    cfg = SynthConfig(**config)
    lang, espeak_lang, biased = {SOURCE_NAME: ("en", "en", True),
                                 TARGET_NAME: ("zh", "cmn", False)}[corpus]
    folder = Path(folder)
    folder.mkdir(parents=True)
    rows = []
    with open_session() as engine:
        for utt in _plan(lang, espeak_lang, cfg, seed, biased=biased):
            audio = _render(engine, utt, lang, cfg, seed)
            rel = Path(utt.speaker.speaker) / f"{utt.utt_id}.{cfg.audio_format}"
            (folder / rel.parent).mkdir(exist_ok=True)
            sf.write(str(folder / rel), audio, cfg.sample_rate, subtype="PCM_16",
                     format=cfg.audio_format.upper())
            rows.append({
                "utt_id": utt.utt_id, "file": rel.as_posix(), "speaker": utt.speaker.speaker,
                "gender": utt.speaker.gender, "emotion": utt.emotion,
                "split": utt.speaker.split, "language": lang,
                "text_id": f"t{utt.text_id:02d}", "text": _TEXTS[lang][utt.text_id],
                "voice": utt.speaker.voice, "rate": utt.rate, "pitch": utt.pitch,
                "pitch_range": utt.pitch_range, "gain_db": round(utt.gain_db, 3),
            })
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)


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
