"""hf:<model> frontend with tiny random models saved to a temporary folder (offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fairser.errors import ConfigError, FeatureError
from fairser.features import build_frontend, extract


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm", "hubert", "data2vec"])
def test_ssl_encoders_match_direct_forward(kind: str, make_corpus, tmp_path: Path,
                                           save_hf_model) -> None:
    from transformers import AutoFeatureExtractor, AutoModel

    folder = save_hf_model(tmp_path / kind, kind)
    df = make_corpus([0.5, 0.61, 0.73])
    fs = extract(df, f"hf:{folder}", layers="all", cache_dir=tmp_path / "c", progress=False)
    assert fs.bad.empty and fs.n_layers == 3 and fs.dim == 32 and fs.frame_rate == 200.0
    model = AutoModel.from_pretrained(folder).eval()
    fe = AutoFeatureExtractor.from_pretrained(folder)
    import soundfile as sf

    for key, path in zip(fs.keys(), df.path, strict=True):
        x, _ = sf.read(path, dtype="float32")
        with torch.inference_mode():
            ref = model(fe(x, sampling_rate=16000, return_tensors="pt").input_values,
                        output_hidden_states=True).hidden_states
        got = fs[key].astype(np.float32)
        assert got.shape == (3, ref[0].shape[1], 32)
        for layer in range(3):
            np.testing.assert_allclose(got[layer], ref[layer][0].numpy(), atol=2e-2, rtol=1e-2)
    again = extract(df, f"hf:{folder}", layers="all", cache_dir=tmp_path / "c", progress=False)
    assert again.stats.n_computed == 0


def test_whisper_checkpoint_runs_unpadded(make_corpus, tmp_path: Path, save_hf_model) -> None:
    folder = save_hf_model(tmp_path / "whisper", "whisper")
    df = make_corpus([0.5, 1.0])
    fs = extract(df, f"hf:{folder}", layers=[0, -1], cache_dir=tmp_path / "c", progress=False)
    assert fs.layers == (0, 2) and fs.frame_rate == 50.0
    assert fs["syn/utt000"].shape == (2, 25, 32) and fs["syn/utt001"].shape == (2, 50, 32)


def test_offline_hub_id_and_bad_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FeatureError, match="allow-download") as info:
        build_frontend("hf:nobody/no-such-model-anywhere")
    assert "offline" in str(info.value) and "hf download nobody/no-such-model-anywhere" in str(
        info.value) and "hub id" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatureError, match="cannot load the local folder"):
        build_frontend(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(ConfigError, match="allowed options"):
        build_frontend(f"hf:{tmp_path}", options={"trust_remote_code": True})


@pytest.mark.parametrize("spec", ["/missing/folder", "./rel-missing", "../up/missing",
                                  "~/no-such-fairser-model", "a/b/c", "rel-missing/"])
def test_missing_local_folders_are_not_hub_ids(spec: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from fairser.features.hf import model_source

    monkeypatch.chdir(tmp_path)
    assert model_source(spec) == "folder"
    with pytest.raises(FeatureError) as info:
        build_frontend(f"hf:{spec}")
    message = str(info.value)
    assert "local model folder" in message and "does not exist" in message, message
    assert "hub" not in message and "\n" not in message


def test_hub_ids_and_present_folders_are_classified(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from fairser.features.hf import model_source

    monkeypatch.chdir(tmp_path)
    assert model_source("microsoft/wavlm-base-plus") == "hub"
    assert model_source("bert-base-uncased") == "hub"
    (tmp_path / "org" / "local").mkdir(parents=True)
    assert model_source("org/local") == "folder"  # an existing folder wins over a hub id
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(FeatureError, match="is a file, not a model folder"):
        build_frontend("hf:./file.bin")


def test_hf_errors_through_the_cli(make_corpus, tmp_path: Path, capsys) -> None:
    from fairser.cli import main

    df = make_corpus([0.5])
    df.to_csv(tmp_path / "m.csv", index=False)
    for spec, message in [("hf:/missing/folder", "local model folder /missing/folder does not"),
                          ("hf:nobody/nothing", "hf download nobody/nothing")]:
        with pytest.raises(SystemExit) as info:
            main(["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--frontend", spec,
                  "--cache", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


def test_changed_weights_change_the_store_key(tmp_path: Path, save_hf_model) -> None:
    folder = save_hf_model(tmp_path / "m", "wav2vec2")
    before = build_frontend(f"hf:{folder}").key()
    assert build_frontend(f"hf:{folder}").key() == before
    (folder / "config.json").write_text((folder / "config.json").read_text().replace(
        '"layer_norm_eps": 1e-05', '"layer_norm_eps": 1e-06'))
    assert build_frontend(f"hf:{folder}").key() != before
