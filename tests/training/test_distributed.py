"""DistributedDataParallel: ``torchrun`` with 2 CPU processes (gloo) against one process.

Every rank builds the same batch plan from the seed and trains on a disjoint share of every
batch; each rank's mean emotion loss is weighted by its share of the batch, so the averaged
gradient is the whole batch's. With dropout off, stage 1 therefore matches a single process up
to float summation order. Batch-level statistics (CORAL, L_GSim pairs, the gender loss mean)
are computed on each rank's share, as in any DDP training, so methods using them match only
approximately.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fairser.training import fit
from fairser.training.samplers import shard

CONFTEST = Path(__file__).with_name("conftest.py")

_CHILD = """
import importlib.util, json, sys
import numpy as np, torch
spec = importlib.util.spec_from_file_location("synth", {conftest!r})
mod = importlib.util.module_from_spec(spec)
sys.modules["synth"] = mod
spec.loader.exec_module(mod)
from fairser.training import fit
from fairser.training.checkpoint import Checkpointer
from fairser.training.model import FittedModel
from fairser.training.distributed import process_group

out = {out!r}
calls = {{"save_last": 0, "save_best": 0, "save_model": 0, "steps": 0}}
def counting(name, real):
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return real(*args, **kwargs)
    return wrapper
Checkpointer.save_last = counting("save_last", Checkpointer.save_last)
Checkpointer.save_best = counting("save_best", Checkpointer.save_best)
FittedModel.save = counting("save_model", FittedModel.save)
torch.optim.AdamW.step = counting("steps", torch.optim.AdamW.step)
src, tgt, feats = mod.make_pair(seed=0, n_source=200, n_target=120, dim=12)
with process_group(torch.device("cpu")) as dist:
    for method, cfg in json.loads({cases!r}).items():
        m = fit(source=src, target=None if method == "source-only" else tgt, features=feats,
                method=method, emotion="angry", config=cfg, seed=0, progress=False,
                workdir=f"{{out}}/{{method}}")
        if dist.is_main:
            np.save(f"{{out}}/{{method}}.npy", m.predict_proba(tgt, feats))
    with open(f"{{out}}/rank{{dist.rank}}.json", "w") as fh:
        json.dump({{"world": dist.world, **calls}}, fh)
"""


def _cases(fast_config: dict) -> dict[str, dict]:
    cfg = {**fast_config, "stage1_epochs": 3, "stage2_epochs": 2, "device": "cpu"}
    cfg["model"] = {**cfg["model"], "dropout": 0.0, "input_dropout": 0.0}
    return {"source-only": cfg, "pa": cfg}


def _torchrun(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_shards_are_disjoint_and_even() -> None:
    batch = np.random.default_rng(0).permutation(37)
    parts = [shard(batch, r, 3) for r in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == sorted(batch.tolist())
    assert {len(p) for p in parts} == {12, 13}


@pytest.mark.slow
def test_torchrun_two_processes_match_one(small_pair, fast_config, tmp_path, monkeypatch) -> None:
    src, tgt, feats = small_pair
    cases = _cases(fast_config)
    code = _CHILD.format(conftest=str(CONFTEST), out=str(tmp_path), cases=json.dumps(cases))
    script = tmp_path / "child.py"
    script.write_text(code, encoding="utf-8")
    res = _torchrun([str(script)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]

    steps = {"n": 0}
    real_step = torch.optim.AdamW.step

    def counted(self, *a, **k):
        steps["n"] += 1
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    single = {
        method: fit(
            source=src,
            target=None if method == "source-only" else tgt,
            features=feats,
            method=method,
            emotion="angry",
            config=cfg,
            seed=0,
            progress=False,
        ).predict_proba(tgt, feats)
        for method, cfg in cases.items()
    }
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # the same number of optimisation steps on every rank, and as many as one process takes
    assert ranks[0]["steps"] == ranks[1]["steps"] == steps["n"]
    # rank 0 alone writes checkpoints and models; rank 1 waited for it
    assert ranks[0]["save_last"] > 0 and ranks[0]["save_model"] == 2
    assert ranks[1]["save_last"] == ranks[1]["save_best"] == ranks[1]["save_model"] == 0
    for method in cases:
        assert (tmp_path / method / "model" / "model.safetensors").is_file()
        assert not (tmp_path / method / "checkpoints").exists()
    # stage 1 alone: the same gradients up to float summation order (1e-5 leaves room for
    # gloo's all-reduce and BLAS rounding; a wrong share weighting gives differences ~1e-2)
    ddp = np.load(tmp_path / "source-only.npy")
    assert np.abs(ddp - single["source-only"]).max() < 1e-5
    # pa's CORAL term is computed on each rank's half batch (a different batch statistic):
    # close, not equal (measured max 0.03 on this pair; a broken DDP path gives ~0.2+)
    ddp = np.load(tmp_path / "pa.npy")
    assert np.abs(ddp - single["pa"]).max() < 0.1
    assert np.abs(ddp - single["pa"]).mean() < 0.03


@pytest.mark.slow
def test_fairser_train_under_torchrun(tmp_path) -> None:
    """``torchrun --no-python fairser train``: rank 0 alone prints and saves; the scores equal
    a single-process run (source-only, dropout off: see the module docstring)."""
    pytest.importorskip("fairser.corpora.synthetic")
    fairser = Path(sys.executable).with_name("fairser")
    small = {"utterances": 48, "speakers_per_gender": 3}
    cfg = {
        "source": "synthetic-source:synth",
        "target": "synthetic-target:synth",
        "source_options": small,
        "target_options": small,
        "frontend": "logmel",
        "method": "source-only",
        "emotion": "angry",
        "cache_dir": "cache",
        "training": {
            "model": {
                "d_model": 16,
                "n_heads": 2,
                "ff_dim": 32,
                "embed_dim": 16,
                "dropout": 0.0,
                "input_dropout": 0.0,
            },
            "stage1_epochs": 2,
            "batch_size": 16,
            "num_threads": 1,
            "device": "cpu",
        },
    }
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    # its own feature cache, so that the two ranks must extract (not read the first run's)
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({**cfg, "cache_dir": "cache2"}),
                                       encoding="utf-8")
    one = subprocess.run(
        [str(fairser), "train", "one.yaml", "--no-progress", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    res = _torchrun(
        ["--no-python", str(fairser), "train", "two.yaml", "--no-progress", "--json"], tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count('"workdir"') == 1  # only rank 0 prints
    a, b = json.loads(one.stdout), json.loads(res.stdout)
    assert a["world_size"] == 1 and b["world_size"] == 2 and b["device"] == "cpu"
    assert b["source_test"]["uar"] == pytest.approx(a["source_test"]["uar"], abs=1e-9)
    assert b["target"]["uar"] == pytest.approx(a["target"]["uar"], abs=1e-9)
    meta = json.loads((tmp_path / "two.run" / "model" / "model.json").read_text())
    assert meta["world_size"] == 2 and meta["device"] == "cpu" and meta["precision"] == "fp32"
    # both ranks extracted a shard of their own, together every row a single process did
    (n_rows,) = a["features"]["rows_per_shard"]
    shares = b["features"]["rows_per_shard"]
    assert b["features"]["shards"] == 2 and len(shares) == 2 and min(shares) > 0
    assert sum(shares) == n_rows
    one_log, two_log = (_extraction_log(tmp_path / c) for c in ("cache", "cache2"))
    assert [r["shard"] for r in one_log] == [None]
    assert sorted(r["shard"] for r in two_log) == [[0, 2], [1, 2]]
    assert sum(r["n_computed"] for r in two_log) == one_log[0]["n_computed"]


def _extraction_log(cache: Path) -> list[dict]:
    (folder,) = (cache / "features").glob("logmel-*")
    lines = (folder / "extractions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _wav_corpus(root: Path, n: int = 8) -> Path:
    """``n`` short noise WAVs and their CSV manifest (for logmel extraction)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        sf.write(root / f"u{i}.wav", (0.1 * rng.standard_normal(4800)).astype(np.float32), 16000)
        rows.append(f"syn,u{i},{root / f'u{i}.wav'},s{i % 2},{'MF'[i % 2]},neutral,train,en,0.3")
    text = "corpus,utt_id,path,speaker,gender,emotion,split,language,duration_s\n"
    (root / "m.csv").write_text(text + "\n".join(rows) + "\n", encoding="utf-8")
    return root / "m.csv"


def test_each_rank_extracts_its_shard_and_checks_the_store(tmp_path) -> None:
    """``extract_run_features`` under a 2-rank Dist: shard ``rank/2`` only, then a complete
    store or one line naming what is missing (the ranks are played one after the other in a
    1-process gloo group, so the collective runs for real)."""
    from fairser.corpora import load_corpus
    from fairser.errors import FeatureError
    from fairser.features.shard import shard_of
    from fairser.training.distributed import Dist
    from fairser.training.run import RunConfig, extract_run_features

    csv = _wav_corpus(tmp_path / "audio")
    manifest = load_corpus(f"csv:{csv}")
    keys = [f"{c}/{u}" for c, u in zip(manifest.corpus, manifest.utt_id, strict=True)]
    per_shard = [sum(shard_of(k, 2) == r for k in keys) for r in (0, 1)]
    assert min(per_shard) > 0
    cfg = RunConfig(source=f"csv:{csv}", frontend="logmel", cache_dir=str(tmp_path / "c"))
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1
    )
    try:
        with pytest.raises(FeatureError, match=rf"{per_shard[1]} row\(s\) missing \(e.g. \w+/u"
                                               r"\d\) and 0 damaged entries after all 2 ranks"):
            extract_run_features(cfg, manifest, Dist(0, 2), progress=False)
        fs, info = extract_run_features(cfg, manifest, Dist(1, 2), progress=False)
    finally:
        torch.distributed.destroy_process_group()
    assert sorted(fs.keys()) == sorted(keys) and len(fs.bad) == 0
    assert info == {"shards": 2, "rows_per_shard": [0, per_shard[1]]}  # rank 0's share: its own
    assert sorted(r["shard"] for r in _extraction_log(tmp_path / "c")) == [[0, 2], [1, 2]]
    alone, info = extract_run_features(cfg, manifest, Dist(), progress=False)
    assert info == {"shards": 1, "rows_per_shard": [8]} and alone.stats.n_cached == 8


def test_process_group_timeout_is_explicit_and_checked(tmp_path, monkeypatch) -> None:
    import datetime

    from fairser.errors import ConfigError
    from fairser.training.distributed import DEFAULT_TIMEOUT_S, TIMEOUT_ENV, dist_timeout
    from fairser.training.run import load_run_config

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert dist_timeout() == datetime.timedelta(seconds=DEFAULT_TIMEOUT_S) and \
        DEFAULT_TIMEOUT_S >= 3600  # well above torch's 10 min (nccl) / 30 min (gloo)
    assert dist_timeout(environ={TIMEOUT_ENV: "90"}).total_seconds() == 90
    assert dist_timeout(timeout_s=5, environ={TIMEOUT_ENV: "90"}).total_seconds() == 5
    for bad in ("soon", "0", "-3", "inf"):
        with pytest.raises(ConfigError, match=f"{TIMEOUT_ENV}=.*positive number of seconds"):
            dist_timeout(environ={TIMEOUT_ENV: bad})
    run = tmp_path / "run.yaml"
    run.write_text("source: csv:m.csv\nmethod: source-only\nfeatures_device: cuda:1\n"
                   "features_precision: bf16\nfeatures_batch_seconds: 30\n"
                   "dist_timeout_s: 600\n", encoding="utf-8")
    cfg = load_run_config(run)
    assert (cfg.features_device, cfg.features_precision, cfg.features_batch_seconds,
            cfg.dist_timeout_s) == ("cuda:1", "bf16", 30.0, 600.0)
    run.write_text("source: csv:m.csv\nmethod: source-only\nfeatures_device: gpu\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="features_device.*'gpu' is not one of auto"):
        load_run_config(run)


def test_ddp_wrap_works_with_and_without_forward_sync_buffers(monkeypatch, tmp_path) -> None:
    """torch 2.13 names the per-forward buffer sync ``forward_sync_buffers``; torch 2.11 (a
    GPU machine's stack) knows only ``broadcast_buffers`` and rejects the new keyword."""
    import warnings

    from fairser.training.distributed import _no_buffer_sync, ddp_wrap

    ddp = torch.nn.parallel.DistributedDataParallel
    seen: dict = {}

    class OldDDP(ddp):  # the torch 2.11 signature: no forward_sync_buffers
        def __init__(self, module, device_ids=None, broadcast_buffers=True,
                     find_unused_parameters=False):  # fmt: skip
            seen.update(broadcast_buffers=broadcast_buffers)
            super().__init__(
                module, device_ids=device_ids, find_unused_parameters=find_unused_parameters
            )

    assert _no_buffer_sync(OldDDP) == {"broadcast_buffers": False}
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no deprecation warning on this torch
            wrapped = ddp_wrap(torch.nn.Linear(3, 2), torch.device("cpu"))
        assert not wrapped.forward_sync_buffers
        monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", OldDDP)
        old = ddp_wrap(torch.nn.Linear(3, 2), torch.device("cpu"))
        assert isinstance(old, OldDDP) and seen == {"broadcast_buffers": False}
        old(torch.ones(4, 3)).sum().backward()
    finally:
        torch.distributed.destroy_process_group()
