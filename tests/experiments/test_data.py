"""Row selection: speaker splits, source subsampling, target roles."""

from __future__ import annotations

import numpy as np
import pytest

from fairser.errors import ConfigError, CorpusError
from fairser.experiments import (
    SourceSplitConfig,
    SubsampleSpec,
    TargetSplitConfig,
    apply_subsample,
    restrict_emotions,
    source_with_splits,
    speaker_split,
    target_roles,
)


def test_speaker_split_is_disjoint_stratified_and_seeded(manifest_factory):
    df = manifest_factory("c", speakers_per_gender=10, per_emotion=1, with_splits=False)
    split = speaker_split(df, dev_fraction=0.2, test_fraction=0.2, seed=3)
    per_speaker = df.assign(split=split).groupby("speaker")["split"].nunique()
    assert (per_speaker == 1).all()
    counts = df.assign(split=split).groupby(["split", "gender"])["speaker"].nunique()
    assert counts.to_dict() == {("dev", "F"): 2, ("dev", "M"): 2, ("test", "F"): 2,
                                ("test", "M"): 2, ("train", "F"): 6, ("train", "M"): 6}
    assert split.equals(speaker_split(df, dev_fraction=0.2, test_fraction=0.2, seed=3))
    assert not split.equals(speaker_split(df, dev_fraction=0.2, test_fraction=0.2, seed=4))


def test_speaker_split_needs_three_speakers_per_gender(manifest_factory):
    df = manifest_factory("casia", speakers_per_gender=2, per_emotion=1, with_splits=False)
    with pytest.raises(CorpusError, match="corpus casia: gender F has 2 speaker"):
        speaker_split(df)


def test_source_split_modes(manifest_factory):
    with_splits = manifest_factory("c", speakers_per_gender=4, per_emotion=1, with_splits=True)
    kept = source_with_splits(with_splits, SourceSplitConfig(mode="auto"))
    assert kept["split"].equals(with_splits["split"])
    no_splits = manifest_factory("c", speakers_per_gender=4, per_emotion=1, with_splits=False)
    made = source_with_splits(no_splits, SourceSplitConfig(mode="auto"))
    assert set(made["split"]) == {"train", "dev", "test"}
    with pytest.raises(CorpusError, match="no train/dev/test rows"):
        source_with_splits(no_splits, SourceSplitConfig(mode="manifest"))


def test_subsample_thins_exactly_the_defined_rows(manifest_factory):
    df = manifest_factory("c", speakers_per_gender=4, per_emotion=10, with_splits=True)
    spec = SubsampleSpec(gender="F", keep=0.3, seed=1)
    out = apply_subsample(df, spec, emotion="angry")
    cell = (df["split"] == "train") & (df["gender"] == "F") & (df["emotion"] == "angry")
    n_cell = int(cell.sum())  # 2 train speakers x 10 utterances
    assert n_cell == 20
    out_cell = (out["split"] == "train") & (out["gender"] == "F") & (out["emotion"] == "angry")
    assert int(out_cell.sum()) == 6
    assert len(df) - len(out) == 14  # nothing else dropped: dev/test and other cells untouched
    other = ~cell.to_numpy()
    assert out.loc[~out_cell.to_numpy()].reset_index(drop=True).equals(
        df.loc[other].reset_index(drop=True))
    again = apply_subsample(df, spec, emotion="angry")
    assert again.equals(out)
    assert apply_subsample(df, SubsampleSpec(keep=1.0), emotion="angry").equals(df)
    assert SubsampleSpec(gender="F", keep=0.3).label == "F30"
    with pytest.raises(ConfigError, match="no source train rows of gender M and emotion fear"):
        apply_subsample(df, SubsampleSpec(gender="M", keep=0.5, emotion="fear"), emotion="angry")
    with pytest.raises(ValueError, match="'M' or 'F'"):  # a gender outside M/F: a config error
        SubsampleSpec(gender="X", keep=0.5)


def test_target_roles(manifest_factory):
    df = manifest_factory("t", speakers_per_gender=2, per_emotion=2, with_splits=False)
    adapt, evals = target_roles(df, TargetSplitConfig(mode="transductive"))
    assert len(adapt) == len(evals) == len(df)
    adapt, evals = target_roles(df, TargetSplitConfig(mode="speakers", seed=0))
    assert set(adapt["speaker"]).isdisjoint(evals["speaker"])
    assert sorted(evals["gender"].unique()) == ["F", "M"] and evals["speaker"].nunique() == 2
    with pytest.raises(CorpusError, match="leaves none to adapt on"):
        target_roles(df, TargetSplitConfig(mode="speakers", eval_speakers_per_gender=2))
    with pytest.raises(CorpusError, match="needs train and test rows"):
        target_roles(df, TargetSplitConfig(mode="manifest"))


def test_restrict_emotions_drops_others_and_missing(manifest_factory):
    df = manifest_factory("c", speakers_per_gender=1, per_emotion=2, with_splits=False)
    df.loc[0, "emotion"] = None
    out = restrict_emotions(df, ["angry", "sad"])
    assert set(out["emotion"]) == {"angry", "sad"}
    assert len(out) == int(np.sum(df["emotion"].isin(["angry", "sad"]).fillna(False)))


def test_group_split_is_group_disjoint(manifest_factory):
    from fairser.experiments.data import group_split

    df = manifest_factory("c", speakers_per_gender=2, per_emotion=10, with_splits=False)
    df["text_id"] = [str(200 + i % 10) for i in range(len(df))]
    split = group_split(df, "text_id", dev_fraction=0.2, test_fraction=0.2, seed=0)
    assert (df.assign(s=split).groupby("text_id")["s"].nunique() == 1).all()
    assert split.value_counts().to_dict() == {"train": 96, "dev": 32, "test": 32}
    cfg = SourceSplitConfig(mode="groups", group_column="text_id")
    assert set(source_with_splits(df, cfg)["split"]) == {"train", "dev", "test"}
    with pytest.raises(CorpusError, match="no column 'sentence'"):
        group_split(df, "sentence")
