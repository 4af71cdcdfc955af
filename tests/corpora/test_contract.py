"""The corpus adapter contract, checked for every registered adapter.

Modelled on scikit-learn's ``parametrize_with_checks``: every kind in
:data:`fairser.corpora.CORPORA` is run on a tiny folder generated in its own naming scheme and
must

1. yield a valid manifest (schema) holding exactly the utterances written, with their
   speakers' genders and canonical emotions;
2. report an unknown emotion code as one problem naming its file (and label-table line);
3. be deterministic: the same manifest on a rescan and from the same files created in another
   order (label tables keep their row order: it is part of the input);
4. split speaker-disjointly (assigned splits: both genders in every split).

A new adapter is tested by being registered: :data:`FIXTURES` must hold a generator for every
registered kind, and the tests fail for a kind without one.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fairser.corpora import CORPORA, load_corpus, scan_corpus, validate_manifest
from fairser.errors import CorpusError

EMOTIONS = ("neutral", "happy", "sad", "angry")
#: The standard design: 3 male and 3 female speakers, each emotion twice per speaker.
DESIGN = [(s, "M" if s < 3 else "F", emo, take)
          for s in range(6) for emo in EMOTIONS for take in (1, 2)]


@dataclass
class Case:
    """What a generator wrote: the spec to load, options, and what the scan must find."""

    spec: str
    options: dict = field(default_factory=dict)
    expected: Counter | None = None  # (gender, emotion) -> utterances; None: adapter's own data
    bad_file: str | None = None  # file name of the row with the unknown code
    bad_line: int | None = None  # its label-table line, for table-driven corpora
    unknown: str = ""


def _wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(str(path), (0.1 * rng.standard_normal(400)).astype(np.float32), 16000)


def _write_all(root: Path, names: list[str], order: int) -> None:
    for i, name in (reversed(list(enumerate(names))) if order else enumerate(names)):
        _wav(root / name, i)


def _expected() -> Counter:
    return Counter((g, e) for _, g, e, _ in DESIGN)


# ------------------------------------------------------------------------ folder-coded kinds


def _files_case(kind: str, name_of: Callable, bad: str, unknown: str, **options):
    def make(root: Path, *, unknown_row: bool, order: int) -> Case:
        names = [name_of(s, g, e, t) for s, g, e, t in DESIGN]
        if unknown_row:
            names.append(bad)
        _write_all(root, names, order)
        return Case(f"{kind}:{root}", dict(options), _expected(),
                    Path(bad).name if unknown_row else None, None, unknown)
    return make


_RAV = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05"}
_EMODB = {"neutral": "N", "happy": "F", "sad": "T", "angry": "W"}
_EMODB_SPK = ["03", "10", "11", "08", "09", "13"]  # three male, three female
_ASED = {"neutral": ("n1", "01Neutral"), "happy": ("h3", "03Happy"), "sad": ("s4", "04Sad"),
         "angry": ("a5", "05Angry")}
_EMOVO = {"neutral": "neu", "happy": "gio", "sad": "tri", "angry": "rab"}
_CASIA_SPK = ["wangzhe", "ZhaoZuoxiang", "extra_m", "liuchanhg", "zhaoquanyin", "extra_f"]
_CREMA = {"neutral": "NEU", "happy": "HAP", "sad": "SAD", "angry": "ANG"}


def _ravdess_name(s, g, e, t):  # actor numbers: odd male, even female
    actor = 2 * s + 1 if g == "M" else 2 * (s - 3) + 2
    return f"Actor_{actor:02d}/03-01-{_RAV[e]}-01-0{t}-01-{actor:02d}.wav"


def _crema_d(root: Path, *, unknown_row: bool, order: int) -> Case:
    names = [f"AudioWAV/{1001 + s}_IEO_{_CREMA[e]}_{'LO' if t == 1 else 'HI'}.wav"
             for s, g, e, t in DESIGN]
    if unknown_row:
        names.append("AudioWAV/1001_IEO_BOR_LO.wav")
    _write_all(root, names, order)
    rows = [f"{1001 + s},30,{'Male' if s < 3 else 'Female'},Caucasian,Not Hispanic"
            for s in range(6)]
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n" + "\n".join(rows) + "\n")
    return Case(f"crema-d:{root}", {}, _expected(),
                "1001_IEO_BOR_LO.wav" if unknown_row else None, None, "BOR")


def _iemocap(root: Path, *, unknown_row: bool, order: int) -> Case:
    cat = {"neutral": "neu", "happy": "hap", "sad": "sad", "angry": "ang"}
    lines: dict[int, list[str]] = {1: [], 2: [], 3: []}
    names = []
    for s, g, e, t in DESIGN:
        sess = s % 3 + 1
        utt = f"Ses0{sess}F_impro01_{g}{s * 10 + EMOTIONS.index(e) * 2 + t:03d}"
        names.append(f"Session{sess}/sentences/wav/Ses0{sess}F_impro01/{utt}.wav")
        lines[sess].append(f"[1.0 - 2.0]\t{utt}\t{cat[e]}\t[2.5, 2.5, 2.5]")
    bad_line = None
    if unknown_row:
        utt = "Ses01F_impro01_F999"
        names.append(f"Session1/sentences/wav/Ses01F_impro01/{utt}.wav")
        lines[1].append(f"[1.0 - 2.0]\t{utt}\tzzz\t[2.5, 2.5, 2.5]")
    _write_all(root, names, order)
    for sess, rows in lines.items():
        table = root / f"Session{sess}/dialog/EmoEvaluation/Ses0{sess}F_impro01.txt"
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text("% header\n\n" + "\n\n".join(rows) + "\n")
        if unknown_row and sess == 1:
            bad_line = 3 + 2 * (len(rows) - 1)
    # IEMOCAP's speaker is the session + gender: 3 sessions x 2 genders = 6 speakers
    return Case(f"iemocap:{root}", {}, _expected(), "Ses01F_impro01_F999.wav" if unknown_row
                else None, bad_line, "zzz")


def _podcast(kind: str) -> Callable:
    def make(root: Path, *, unknown_row: bool, order: int) -> Case:
        code = {"neutral": "N", "happy": "H", "sad": "S", "angry": "A"}
        split = {0: "Train", 1: "Development", 2: "Test1"}
        rows, names = [], []
        for s, g, e, t in DESIGN:
            name = f"MSP-PODCAST_{s:04d}_{EMOTIONS.index(e) * 2 + t:04d}.wav"
            names.append(f"Audios/{name}")
            sex = "Male" if g == "M" else "Female"
            rows.append(f"{name},{code[e]},3.0,4.0,4.0,{100 + s},{sex},{split[s % 3]}")
        if unknown_row:
            names.append("Audios/MSP-PODCAST_0999_0001.wav")
            rows.append("MSP-PODCAST_0999_0001.wav,Z,3.0,4.0,4.0,100,Male,Train")
        _write_all(root, names, order)
        (root / "Labels").mkdir(parents=True, exist_ok=True)
        (root / "Labels/labels_consensus.csv").write_text(
            "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
            + "\n".join(rows) + "\n")
        return Case(f"{kind}:{root}", {}, _expected(),
                    "MSP-PODCAST_0999_0001.wav" if unknown_row else None,
                    len(rows) + 1 if unknown_row else None, "Z")
    return make


def _csv(root: Path, *, unknown_row: bool, order: int) -> Case:
    rows, names = [], []
    for s, g, e, t in DESIGN:
        names.append(f"audio/spk{s}/{e}{t}.wav")
        rows.append(f"audio/spk{s}/{e}{t}.wav,spk{s},{g},{e}")
    if unknown_row:
        names.append("audio/spk0/bad.wav")
        rows.append("audio/spk0/bad.wav,spk0,M,furious")
    _write_all(root, names, order)
    (root / "t.csv").write_text("path,speaker,gender,emotion\n" + "\n".join(rows) + "\n")
    return Case(f"csv:{root / 't.csv'}", {}, _expected(),
                "bad.wav" if unknown_row else None, len(rows) + 1 if unknown_row else None,
                "furious")


# ------------------------------------------------------------------------ synthetic kinds

_SYNTH = {"utterances": 24, "speakers_per_gender": 3}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth-contract")
    load_corpus(f"synthetic-source:{root}", options=_SYNTH)  # generates the pair once
    return root


def _synthetic(kind: str) -> Callable:
    def make(root: Path, *, unknown_row: bool, order: int, synth_root: Path) -> Case:
        shutil.copytree(synth_root, root, dirs_exist_ok=True)
        case = Case(f"{kind}:{root}", dict(_SYNTH), None, None, None, "furious")
        if unknown_row:
            adapter = CORPORA[kind]
            meta = next(root.glob(f"synthetic-*/{adapter.name}/metadata.csv"))
            table = pd.read_csv(meta, dtype=str, keep_default_na=False)
            table.loc[3, "emotion"] = "furious"
            table.to_csv(meta, index=False)
            case.bad_file, case.bad_line = Path(table.loc[3, "file"]).name, 5
        return case
    return make


#: One fixture generator per registered corpus kind (the contract's registry).
FIXTURES: dict[str, Callable] = {
    "ravdess": _files_case("ravdess", _ravdess_name, "Actor_01/03-01-09-01-01-01-01.wav", "09"),
    "casia": _files_case(
        "casia", lambda s, g, e, t: f"{_CASIA_SPK[s]}/{e}/{200 + t}.wav", "wangzhe/bored/201.wav",
        "bored", speaker_genders={"extra_m": "M", "extra_f": "F"}),
    "emodb": _files_case(
        "emodb", lambda s, g, e, t: f"wav/{_EMODB_SPK[s]}a0{t}{_EMODB[e]}a.wav",
        "wav/03a05Xa.wav", "X"),
    "ased": _files_case(
        "ased", lambda s, g, e, t: f"{_ASED[e][1]}/{_ASED[e][0]}-0{t}-01-"
        f"{'02' if g == 'M' else '01'}-{s + 1:02d}.wav", "05Angry/x5-01-01-02-01.wav", "x5"),
    "emovo": _files_case(
        "emovo", lambda s, g, e, t: f"{g.lower()}{s % 3 + 1}/{_EMOVO[e]}-{g.lower()}{s % 3 + 1}-"
        f"b{t}.wav", "m1/xyz-m1-b1.wav", "xyz"),
    "crema-d": _crema_d,
    "iemocap": _iemocap,
    "msp-podcast": _podcast("msp-podcast"),
    "biic-podcast": _podcast("biic-podcast"),
    "csv": _csv,
    "synthetic-source": _synthetic("synthetic-source"),
    "synthetic-target": _synthetic("synthetic-target"),
}

KINDS = sorted(CORPORA)


def _case(kind: str, root: Path, request, *, unknown_row: bool = False, order: int = 0) -> Case:
    if kind not in FIXTURES:
        pytest.fail(f"corpus kind {kind!r} is registered in fairser.corpora.CORPORA but has no "
                    "fixture generator: add one to FIXTURES in tests/corpora/test_contract.py")
    make = FIXTURES[kind]
    if kind.startswith("synthetic"):
        return make(root, unknown_row=unknown_row, order=order,
                    synth_root=request.getfixturevalue("synth_root"))
    return make(root, unknown_row=unknown_row, order=order)


@pytest.mark.parametrize("kind", KINDS)
def test_every_registered_kind_has_a_fixture_generator(kind):
    assert kind in FIXTURES, f"add a fixture generator for {kind!r} to FIXTURES"


def test_a_kind_without_generator_fails_the_contract(tmp_path, request):
    with pytest.raises(pytest.fail.Exception, match="'new-kind' is registered .* but has no "
                       "fixture generator"):
        _case("new-kind", tmp_path, request)


@pytest.mark.parametrize("kind", KINDS)
def test_valid_manifest(kind, tmp_path, request):
    case = _case(kind, tmp_path / kind, request)
    df = load_corpus(case.spec, options=case.options)
    validate_manifest(df)
    assert len(df) and df["path"].map(lambda p: Path(p).is_absolute()).all()
    assert set(df.dropna(subset=["gender"])["gender"]) == {"M", "F"}
    if case.expected is not None:
        assert Counter(zip(df["gender"], df["emotion"], strict=True)) == case.expected
        assert df.drop_duplicates("speaker")["gender"].value_counts().to_dict() == \
            {"M": 3, "F": 3}


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_code_is_a_problem_with_its_row(kind, tmp_path, request):
    case = _case(kind, tmp_path / kind, request, unknown_row=True)
    scan = scan_corpus(case.spec, options=case.options)
    assert scan.problems[["kind", "code"]].values.tolist() == [["unknown-emotion",
                                                                case.unknown]]
    bad = scan.problems.iloc[0]
    assert Path(bad["path"]).name == case.bad_file
    if case.bad_line is not None:
        assert int(bad["line"]) == case.bad_line and pd.notna(bad["source"])
    with pytest.raises(CorpusError, match=f"unknown-emotion '{case.unknown}' in "):
        load_corpus(case.spec, options=case.options)
    fixed = scan_corpus(case.spec, options={**case.options,
                                            "label_map": {case.unknown: "other"}})
    assert len(fixed.problems) == 0 and len(fixed.manifest) == len(scan.manifest) + 1


class _ReversedScandir:
    """``os.scandir`` listing entries in reverse: another file system's directory order."""

    real = staticmethod(os.scandir)

    def __init__(self, path=".") -> None:
        with self.real(path) as it:
            self.entries = list(it)[::-1]

    def __iter__(self):
        return iter(self.entries)

    def __enter__(self):
        return iter(self.entries)

    def __exit__(self, *exc) -> bool:
        return False


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic(kind, tmp_path, request, monkeypatch):
    case = _case(kind, tmp_path / "a", request)
    first = load_corpus(case.spec, options=case.options)
    pd.testing.assert_frame_equal(first, load_corpus(case.spec, options=case.options))
    other = _case(kind, tmp_path / "b", request, order=1)  # files created in reverse order
    monkeypatch.setattr(os, "scandir", _ReversedScandir)  # ... and listed in reverse
    second = load_corpus(other.spec, options=other.options)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(
        first.drop(columns="path"), second.drop(columns="path"), check_like=False)


@pytest.mark.parametrize("kind", KINDS)
def test_speaker_disjoint_splits(kind, tmp_path, request):
    case = _case(kind, tmp_path / kind, request)
    for seed in (0,) if kind.startswith("synthetic") else (0, 1):  # synthetic: seed = voices
        df = load_corpus(case.spec, options={**case.options, "seed": seed})
        assert df["split"].notna().all()
        assert df.groupby("speaker")["split"].nunique().max() == 1
        if not CORPORA[kind].official_splits:
            per_split = df.drop_duplicates("speaker").groupby("split")["gender"].nunique()
            assert set(per_split.index) == {"train", "dev", "test"} and per_split.eq(2).all()
