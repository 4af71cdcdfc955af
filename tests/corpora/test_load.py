"""load_corpus / scan_corpus: specs, options, problem reporting, split assignment."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.corpora import (
    CORPORA,
    PROBLEM_COLUMNS,
    assign_splits,
    load_corpus,
    parse_spec,
    scan_corpus,
)
from fairser.errors import ConfigError, CorpusError


def test_registry_lists_every_kind():
    assert {"ravdess", "casia", "emodb", "synthetic-source", "synthetic-target"} <= set(CORPORA)
    with pytest.raises(TypeError):
        CORPORA["x"] = CORPORA["ravdess"]  # read-only registry


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ravdess", "expected KIND:ROOT"),
        ("nope:/x", "unknown corpus kind 'nope'; use one of ravdess"),
        ("ravdess:", "missing ROOT after ':'"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(CorpusError, match=message):
        parse_spec(spec)


def test_spec_kind_is_case_and_underscore_insensitive(tmp_path):
    adapter, root = parse_spec(f"RAVDESS:{tmp_path}")
    assert adapter.name == "ravdess" and root == tmp_path
    assert parse_spec("synthetic_source:")[1] is None


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(CorpusError) as err:
        load_corpus(f"ravdess:{tmp_path / 'absent'}")
    assert str(err.value) == (f"ravdess:{tmp_path / 'absent'}: corpus folder not found; pass "
                              "KIND:ROOT with the folder that holds the corpus")
    with pytest.raises(CorpusError) as err:
        load_corpus(f"ravdess:{tmp_path}")
    assert str(err.value) == (f"ravdess:{tmp_path}: no utterances found under {tmp_path}; "
                              "check the folder and that it holds the ravdess layout")


def test_unknown_option_and_bad_values(ravdess_root):
    spec = f"ravdess:{ravdess_root}"
    with pytest.raises(ConfigError, match="ravdess options: unknown key 'labelmap'; known keys"):
        load_corpus(spec, options={"labelmap": {}})
    with pytest.raises(ConfigError, match=r"label_map targets \['furious'\] are not canonical"):
        load_corpus(spec, options={"label_map": {"05": "furious"}})
    with pytest.raises(ConfigError, match="split_fractions"):
        load_corpus(spec, options={"split_fractions": [0.5, 0.5, 0.5]})


def test_unknown_codes_listed_with_every_file(ravdess_root, make_files):
    make_files(ravdess_root, ["Actor_01/03-01-09-01-01-01-01.wav",
                              "Actor_02/03-01-09-01-01-01-02.wav",
                              "Actor_02/03-01-10-01-01-01-02.wav"])
    spec = f"ravdess:{ravdess_root}"
    with pytest.raises(CorpusError) as err:
        load_corpus(spec)
    msg = str(err.value)
    assert msg == (f"{spec}: 3 problem(s): unknown-emotion '09' in "
                   "03-01-09-01-01-01-01.wav, 03-01-09-01-01-01-02.wav; '10' in "
                   "03-01-10-01-01-01-02.wav (map it to a canonical emotion with the label_map "
                   f"option); fix them, or run `fairser corpus inspect {spec} --skip-bad` to "
                   "skip these rows")
    assert "\n" not in msg
    # overriding the map fixes it; mapping to null is an explicit missing label
    df = load_corpus(spec, options={"label_map": {"09": "other", "10": None}})
    assert (df["emotion"] == "other").sum() == 2
    assert df["emotion"].isna().sum() == 1


def test_scan_lists_problems_and_skip_bad_keeps_good_rows(ravdess_root, make_files, tmp_path):
    make_files(ravdess_root, ["Actor_01/03-01-09-01-01-01-01.wav", "Actor_01/notes.wav"])
    (ravdess_root / "Actor_01" / "03-01-01-01-01-02-01.wav").write_bytes(b"not audio")
    (ravdess_root / "Actor_01" / "03-01-01-01-01-02-01.flac").write_bytes(b"")
    scan = scan_corpus(f"ravdess:{ravdess_root}")
    probs = scan.problems
    assert list(probs.columns) == list(PROBLEM_COLUMNS)
    assert sorted(probs["kind"]) == ["bad-name", "duplicate", "unknown-emotion",
                                     "unreadable-audio"]
    dup = probs[probs["kind"] == "duplicate"].iloc[0]
    assert dup["utt_id"] == "03-01-01-01-01-02-01"
    assert "already used by" in dup["reason"]
    assert len(scan.manifest) == 96
    assert len(load_corpus(f"ravdess:{ravdess_root}", skip_bad=True)) == 96
    with pytest.raises(CorpusError, match="4 problem"):
        load_corpus(f"ravdess:{ravdess_root}")


def _speakers(n_m: int, n_f: int, n_na: int = 0) -> pd.DataFrame:
    rows = []
    for g, n in (("M", n_m), ("F", n_f), (None, n_na)):
        for i in range(n):
            for u in range(3):
                rows.append({"speaker": f"{g}{i}", "gender": g, "split": None, "u": u})
    df = pd.DataFrame(rows)
    df["gender"] = df["gender"].astype("string")
    df["split"] = df["split"].astype("string")
    return df


def _split_genders(df: pd.DataFrame) -> dict[str, set[str]]:
    return {s: set(g.dropna()) for s, g in df.groupby("split")["gender"]}


@pytest.mark.parametrize(
    ("n_m", "n_f", "splits"),
    [(12, 12, {"train", "dev", "test"}), (5, 5, {"train", "dev", "test"}),
     (3, 7, {"train", "dev", "test"}), (2, 2, {"train", "test"}), (2, 5, {"train", "test"}),
     (1, 4, {"train"})],
)
def test_assign_splits_speaker_disjoint_and_gender_stratified(n_m, n_f, splits):
    df = assign_splits(_speakers(n_m, n_f), seed=3)
    assert df["split"].notna().all()
    assert df.groupby("speaker")["split"].nunique().max() == 1  # speaker-disjoint
    assert set(df["split"]) == splits
    if len(splits) > 1:  # every split that exists holds both genders
        assert all(g == {"M", "F"} for g in _split_genders(df).values())


def test_assign_splits_is_seeded():
    base = _speakers(10, 10, 3)
    a = assign_splits(base, seed=1)["split"].tolist()
    assert a == assign_splits(base, seed=1)["split"].tolist()
    assert a != assign_splits(base, seed=2)["split"].tolist()
    counts = assign_splits(_speakers(12, 12), seed=0).drop_duplicates("speaker")
    assert counts.groupby(["split", "gender"]).size().to_dict() == {
        ("dev", "F"): 2, ("dev", "M"): 2, ("test", "F"): 2, ("test", "M"): 2,
        ("train", "F"): 8, ("train", "M"): 8}


def test_assign_splits_keeps_existing_when_not_overwriting():
    df = _speakers(4, 4)
    df.loc[df["speaker"] == "M0", "split"] = "test"
    out = assign_splits(df, seed=0, overwrite=False)
    assert (out.loc[out["speaker"] == "M0", "split"] == "test").all()
    assert out["split"].notna().all()


def test_zero_dev_share_removes_dev():
    df = assign_splits(_speakers(6, 6), fractions=(0.8, 0.0, 0.2))
    assert set(df["split"]) == {"train", "test"}


def _fake_scan(tmp_path, write_audio, genders, **opts):
    from fairser.corpora._base import (
        Adapter,
        CorpusOptions,
        RawUtterance,
        build_manifest,
        parse_options,
    )

    recs = [RawUtterance(utt_id=f"u{i}", path=write_audio(tmp_path / f"u{i}.wav"),
                         speaker="s1" if i < len(genders) - 1 else "s2", gender=g,
                         emotion="angry", source=str(tmp_path / "labels.csv"), line=i + 2)
            for i, g in enumerate(genders)]
    fake = Adapter(name="fake", scan=lambda root, opts: (recs, []), options=CorpusOptions,
                   label_map=lambda opts: {"angry": "angry"}, language="en",
                   official_splits=True, description="test")
    return build_manifest(fake, tmp_path, parse_options(CorpusOptions, opts, kind="fake"),
                          recs, [], spec=f"fake:{tmp_path}")


def test_speaker_with_two_genders_is_reported(tmp_path, write_audio):
    # s1: u0 Male, u1 female, u2 M -> majority M, u1 is the odd row; s2: u3 F
    scan = _fake_scan(tmp_path, write_audio, ["Male", "female", "M", "F"])
    assert scan.manifest["utt_id"].tolist() == ["u0", "u2", "u3"]
    assert scan.problems[["kind", "utt_id", "line", "code"]].values.tolist() == [
        ["gender-conflict", "u1", 3, "s1"]]
    with pytest.raises(CorpusError) as err:
        scan.raise_for_problems()
    assert str(err.value).startswith(
        f"fake:{tmp_path}: 1 problem(s): gender-conflict 's1' in labels.csv line 3 (u1.wav) "
        "(fix its gender, or pass -o resolve_gender=majority to give such rows the speaker's "
        "majority gender)")
    resolved = _fake_scan(tmp_path, write_audio, ["Male", "female", "M", "F"],
                          resolve_gender="majority")
    assert len(resolved.problems) == 0
    assert resolved.manifest.set_index("utt_id")["gender"].to_dict() == {
        "u0": "M", "u1": "M", "u2": "M", "u3": "F"}
    assert resolved.resolved[["utt_id", "value", "resolved"]].values.tolist() == [
        ["u1", "F", "M"]]
    assert "s1" in resolved.resolved["reason"].iloc[0]


def test_speaker_gender_tie_is_never_resolved(tmp_path, write_audio):
    scan = _fake_scan(tmp_path, write_audio, ["M", "F", "unknown", "F"],
                      resolve_gender="majority")
    assert scan.problems["utt_id"].tolist() == ["u0", "u1"]  # u2 has no gender: no conflict
    assert scan.manifest["utt_id"].tolist() == ["u2", "u3"]
    assert "no majority" in scan.problems["reason"].iloc[0]


def test_resolve_gender_option_is_checked(ravdess_root):
    with pytest.raises(ConfigError, match="ravdess options: resolve_gender: Input should be "
                       "'report' or 'majority'"):
        load_corpus(f"ravdess:{ravdess_root}", options={"resolve_gender": "vote"})


@pytest.mark.parametrize("kind", ["ravdess", "casia", "emodb", "emovo", "crema-d"])
def test_empty_folder_is_an_error_for_every_folder_adapter(tmp_path, kind):
    if kind == "crema-d":
        (tmp_path / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n")
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(CorpusError) as err:
        load_corpus(f"{kind}:{tmp_path}")
    assert str(err.value) == (f"{kind}:{tmp_path}: no utterances found under {tmp_path}; check "
                              f"the folder and that it holds the {kind} layout")


def test_empty_label_tables(tmp_path):
    (tmp_path / "Labels").mkdir()
    (tmp_path / "Audios").mkdir()
    (tmp_path / "Labels/labels_consensus.csv").write_text(
        "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n")
    with pytest.raises(CorpusError, match="no utterances found under"):
        load_corpus(f"msp-podcast:{tmp_path}")
    (tmp_path / "t.csv").write_text("path,speaker\n")
    with pytest.raises(CorpusError, match="the table has no rows; add one row per utterance"):
        load_corpus(f"csv:{tmp_path / 't.csv'}")
