"""write_msp_scale: an MSP-Podcast-format folder the msp-podcast adapter reads at any size."""

from __future__ import annotations

import pandas as pd
import pytest

from fairser.cli import main
from fairser.corpora import load_corpus
from fairser.corpora.msp_scale import MSP_SPLITS, write_msp_scale
from fairser.errors import CorpusError


@pytest.fixture
def audio(tmp_path, make_files):
    return make_files(tmp_path / "real", [f"a{i}.flac" for i in range(5)] + ["b.wav"],
                      seconds=0.05)


def test_small_msp_folder_scans_clean(tmp_path, audio):
    root = write_msp_scale(tmp_path / "msp", audio_from=tmp_path / "real", utterances=1500,
                           speakers=60, seed=3)
    labels = pd.read_csv(root / "Labels/labels_consensus.csv", dtype=str,
                         keep_default_na=False)
    assert list(labels.columns) == ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom",
                                    "SpkrID", "Gender", "Split_Set"]
    assert set(labels["Split_Set"]) == set(MSP_SPLITS)
    assert labels["FileName"].str.match(r"^MSP-PODCAST_\d{4}_\d{4}\.wav$").all()
    shares = labels["Split_Set"].value_counts(normalize=True)
    assert shares["Train"] == pytest.approx(84_030 / 151_654, abs=0.01)
    df = load_corpus(f"msp-podcast:{root}")
    assert len(df) == 1500 and set(df["split"]) == {"train", "dev", "test"}
    known = df[~df["speaker"].str.startswith("unknown-")]
    assert known.groupby("speaker")["split_set"].nunique().max() == 1  # one split each
    assert known.drop_duplicates("speaker")["gender"].value_counts().to_dict().keys() == \
        {"M", "F"}
    unknown = df[df["speaker"].str.startswith("unknown-")]
    assert 0.02 < len(unknown) / len(df) < 0.09 and unknown["gender"].isna().all()
    assert df["emotion"].isna().mean() == pytest.approx(0.30, abs=0.05)  # X: no agreement
    again = write_msp_scale(tmp_path / "msp2", audio_from=tmp_path / "real", utterances=1500,
                            speakers=60, seed=3)
    assert (again / "Labels/labels_consensus.csv").read_text() == \
        (root / "Labels/labels_consensus.csv").read_text()


def test_msp_scale_errors(tmp_path, audio):
    (tmp_path / "taken").mkdir()
    with pytest.raises(CorpusError, match="taken: already exists; remove it or choose"):
        write_msp_scale(tmp_path / "taken", audio_from=tmp_path / "real", utterances=100,
                        speakers=10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no audio files to link to"):
        write_msp_scale(tmp_path / "new", audio_from=tmp_path / "empty", utterances=100,
                        speakers=10)
    assert not (tmp_path / "new").exists()


def test_synthesize_msp_command(tmp_path, audio, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["corpus", "synthesize-msp", str(tmp_path / "msp"), "--audio-from",
              str(tmp_path / "real"), "--utterances", "200", "--speakers", "20"])
    assert exc.value.code in (0, None)
    assert "wrote 200 rows to" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["corpus", "synthesize-msp", str(tmp_path / "msp"), "--audio-from",
              str(tmp_path / "real")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "already exists" in err
