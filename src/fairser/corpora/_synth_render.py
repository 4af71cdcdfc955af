"""What the synthetic pair says and how one corpus of it is rendered (espeak-ng).

Owns the generator's settings (:class:`SynthConfig`), the prosody rule per emotion
(:data:`EMOTION_RULES`), the voices and sentences, the per-utterance plan (speakers, splits,
gender/emotion counts with the planted source bias, jittered prosody), the rendering of one
utterance (level, pad, noise floor, resampling) and :func:`write_corpus`, the worker entry
point that writes one corpus folder and its ``metadata.csv``. Caching, publishing and the
corpus adapters are in :mod:`fairser.corpora.synthetic`, which re-exports the public names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from fairser.corpora._espeak import Espeak, open_session
from fairser.errors import ConfigError

__all__ = [
    "EMOTION_RULES",
    "GENERATOR_VERSION",
    "SOURCE_NAME",
    "SYNTH_EMOTIONS",
    "SynthConfig",
    "TARGET_NAME",
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


def write_corpus(folder: str | Path, *, corpus: str, seed: int, config: dict) -> None:
    """Synthesise one corpus of the pair into the new folder ``folder`` (worker entry point).

    espeak-ng keeps synthesis state in process-wide variables that ``espeak_Terminate`` does
    not fully reset, so the same text renders slightly differently after earlier renders in
    the same process. :func:`fairser.corpora.synthetic.generate_pair` therefore runs this
    function in a fresh Python process per corpus (``python -m fairser.corpora._synth_worker``),
    which makes the files depend on the seed and settings only, and keeps espeak's state out of
    the caller.

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
