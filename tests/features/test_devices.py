"""Device, precision and batch-seconds options of extraction (run on the CPU here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fairser.errors import ConfigError, FeatureError
from fairser.features import build_frontend, extract
from fairser.features.shard import device_for_rank
from fairser.features.store import FeatureStore


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per module: the converted Whisper weights are made once."""
    return tmp_path_factory.mktemp("devices-cache")


def _runs(fs) -> list[dict]:
    path = fs.folder / "extractions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_store_folders_of_fp32_are_those_of_earlier_versions() -> None:
    # Existing stores on disk must still be found: fp32 configurations hash as before.
    expected = {("whisper-tiny.en", None): "whisper-tiny.en-c532381b4a483e1e",
                ("whisper-base", "all"): "whisper-base-8736edb9564755dc",
                ("logmel", None): "logmel-3d2ac04c9df36a72",
                ("egemaps-lld", None): "egemaps-lld-6494b93bc71b9181"}
    for (name, layers), folder in expected.items():
        fe = build_frontend(name, layers=layers)
        assert FeatureStore(Path("/x"), fe.name, fe.config(),
                            dtype=fe.store_dtype).folder.name == folder


def test_precision_is_part_of_the_store_key_and_device_is_logged(make_corpus,
                                                                 cache: Path) -> None:
    df = make_corpus([0.6, 0.9])
    fp32 = extract(df, "whisper-tiny.en", cache_dir=cache, progress=False, device="cpu")
    bf16 = extract(df, "whisper-tiny.en", cache_dir=cache, progress=False, device="auto",
                   precision="bf16")
    assert fp32.folder != bf16.folder and bf16.stats.n_computed == 2
    assert (bf16.stats.device, bf16.stats.precision) == ("cpu", "bf16")
    got, ref = bf16["syn/utt000"].astype(np.float32), fp32["syn/utt000"].astype(np.float32)
    assert np.corrcoef(got[0].ravel(), ref[0].ravel())[0, 1] > 0.99
    assert not np.array_equal(got, ref)
    (run,) = _runs(bf16)
    assert (run["device"], run["precision"], run["precision_requested"]) == ("cpu", "bf16",
                                                                              "bf16")
    # fp16 has no fast CPU kernels: it runs as fp32 there and shares the fp32 entries.
    fp16 = extract(df, "whisper-tiny.en", cache_dir=cache, progress=False, precision="fp16")
    assert fp16.folder == fp32.folder and fp16.stats.n_cached == 2
    assert fp16.stats.precision == "fp32"


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
@pytest.mark.parametrize("frontend", ["whisper-tiny.en", "hf-wavlm", "hf-whisper"])
def test_batched_by_seconds_equals_one_by_one(frontend: str, make_corpus, cache: Path,
                                              tmp_path: Path, save_hf_model,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if frontend.startswith("hf-"):
        kind = frontend[3:]  # wavlm: layer-norm feature encoder, masked batches
        name = f"hf:{save_hf_model(tmp_path / kind, kind)}"
    else:
        name = frontend
    df = make_corpus([0.5, 0.55, 0.62, 0.7, 0.71, 0.8])
    fe = build_frontend(name, layers="all", cache_dir=cache)
    sizes: list[int] = []
    compute = type(fe).compute

    def spy(self, signals):
        sizes.append(len(signals))
        return compute(self, signals)

    monkeypatch.setattr(type(fe), "compute", spy)
    runs: list[int] = []
    from fairser.features.whisper import WhisperEncoderRunner

    run = WhisperEncoderRunner.run

    def run_spy(self, mels, layers):
        runs.append(len(mels))
        return run(self, mels, layers)

    monkeypatch.setattr(WhisperEncoderRunner, "run", run_spy)
    one = extract(df, fe, cache_dir=tmp_path / "one", progress=False, dtype="float32",
                  batch_seconds=0.01)
    assert sizes == [1] * 6
    sizes.clear()
    many = extract(df, fe, cache_dir=tmp_path / "many", progress=False, dtype="float32",
                   batch_seconds=30)
    assert max(sizes) == 6  # all in one padded batch
    if frontend == "hf-whisper":  # the encoder itself ran padded batches, not one by one
        assert max(runs) > 1
    for key in one:
        a, b = np.asarray(one[key]), np.asarray(many[key])
        assert a.shape == b.shape and a.shape[1] > 0
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)


def test_device_for_rank() -> None:
    env = {"LOCAL_RANK": "3"}
    assert device_for_rank("auto", env, n_cuda=2) == "cuda:1"
    assert device_for_rank("auto", env, n_cuda=0) == "auto"
    assert device_for_rank("cpu", env, n_cuda=2) == "cpu"
    assert device_for_rank("auto", {}, n_cuda=2) == "auto"
    with pytest.raises(ConfigError, match="LOCAL_RANK"):
        device_for_rank("auto", {"LOCAL_RANK": "x"}, n_cuda=1)


def test_bad_device_precision_and_batch(make_corpus, tmp_path: Path) -> None:
    df = make_corpus([0.5])
    with pytest.raises(ConfigError, match="device 'gpu'"):
        extract(df, "logmel", cache_dir=tmp_path, progress=False, device="gpu")
    with pytest.raises(ConfigError, match="precision 'fp8'"):
        extract(df, "logmel", cache_dir=tmp_path, progress=False, precision="fp8")
    with pytest.raises(FeatureError, match="batch_seconds=0"):
        extract(df, "logmel", cache_dir=tmp_path, progress=False, batch_seconds=0)
    # per-file frontends run on the CPU in float32 whatever is asked
    fs = extract(df, "logmel", cache_dir=tmp_path, progress=False, precision="bf16")
    assert (fs.stats.device, fs.stats.precision) == ("cpu", "fp32")


def test_device_errors_through_the_cli(make_corpus, tmp_path: Path, capsys) -> None:
    import torch

    from fairser.cli import main

    df = make_corpus([0.5])
    df.to_csv(tmp_path / "m.csv", index=False)
    base = ["features", "extract", f"csv:{tmp_path / 'm.csv'}", "--cache", str(tmp_path)]
    cases = [(["--frontend", "logmel", "--device", "gpu"], "is not one of auto | cpu"),
             (["--frontend", "logmel", "--precision", "half"], "precision 'half'"),
             (["--frontend", "logmel", "--batch-seconds", "-1"], "must be positive")]
    if not torch.cuda.is_available():
        cases.append((["--frontend", "whisper-tiny.en", "--device", "cuda"],
                      "no CUDA device is available here"))
    for extra, message in cases:
        with pytest.raises(SystemExit) as info:
            main(base + extra)
        err = capsys.readouterr().err
        assert info.value.code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
