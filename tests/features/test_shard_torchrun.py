"""``torchrun --standalone --nproc_per_node 2 fairser features extract``: the real launcher.

test_shard.py plays torchrun by setting ``RANK`` / ``WORLD_SIZE`` by hand; here torchrun itself
starts two ranks on a few real EmoDB files (log-mel, an empty store). Each rank must take its
own shard from the environment torchrun sets, both must write rows, and a plain
``--check-only`` run afterwards must find the store complete. Needs ../shared/data (run in CI).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fairser.corpora import load_corpus
from fairser.features import extract
from fairser.features.shard import shard_of

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

#: The torchrun launcher and the extraction-log reader of the DDP training tests.
_spec = importlib.util.spec_from_file_location(
    "_fairser_test_distributed",
    Path(__file__).resolve().parents[1] / "training" / "test_distributed.py")
_distributed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_distributed)
torchrun, extraction_log = _distributed._torchrun, _distributed._extraction_log

#: EmoDB files linked into the test corpus (every 18th of the 535: all ten speakers).
EVERY = 18


def _emodb_subset(shared: Path, root: Path) -> Path:
    folder = root / "wav"
    folder.mkdir(parents=True)
    for path in sorted((shared / "emodb" / "wav").glob("*.flac"))[::EVERY]:
        (folder / path.name).symlink_to(path)
    return root


def test_torchrun_ranks_extract_their_shards_into_one_store(shared_data, tmp_path):
    fairser = Path(sys.executable).with_name("fairser")
    corpus = f"emodb:{_emodb_subset(shared_data, tmp_path / 'emodb')}"
    manifest = load_corpus(corpus)
    keys = [f"{c}/{u}" for c, u in zip(manifest.corpus, manifest.utt_id, strict=True)]
    per_shard = [sum(shard_of(k, 2) == r for k in keys) for r in (0, 1)]
    assert len(keys) == 30 and min(per_shard) > 0
    cache = tmp_path / "cache"
    args = ["features", "extract", corpus, "--frontend", "logmel", "--cache", str(cache),
            "--no-progress"]

    res = torchrun(["--no-python", str(fairser), *args], tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    for rank in (0, 1):  # each rank said which shard it took, from torchrun's RANK/WORLD_SIZE
        assert f"logmel shard {rank}/2: {per_shard[rank]} rows" in res.stderr, res.stderr[-3000:]
    runs = extraction_log(cache)
    assert sorted(r["shard"] for r in runs) == [[0, 2], [1, 2]]
    assert len({r["pid"] for r in runs}) == 2  # two processes, one line each
    by_shard = {tuple(r["shard"]): r["n_computed"] for r in runs}
    assert by_shard == {(0, 2): per_shard[0], (1, 2): per_shard[1]}  # both wrote their rows

    # a plain (unsharded) check afterwards: complete, nothing missing or damaged
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    check = subprocess.run([str(fairser), *args, "--check-only"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    assert f"logmel: {len(keys)} rows, {len(keys)} cached, 0 missing, 0 bad" in check.stderr, \
        check.stderr
    done = extract(manifest, "logmel", cache_dir=cache, progress=False, check_only=True)
    assert done.stats.n_missing == done.stats.n_damaged == 0
    assert done.stats.n_cached == len(keys) and sorted(done.keys()) == sorted(keys)
    assert len(extraction_log(cache)) == 2  # the check computed nothing
