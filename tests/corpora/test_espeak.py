"""espeak-ng from any install location: short data path, clear errors, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import espeakng_loader
import numpy as np
import pytest

from fairser.corpora import _espeak as E
from fairser.errors import CorpusError

REAL_DATA = Path(espeakng_loader.get_data_path())


@pytest.fixture
def deep(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the espeakng_loader package whose data folder path is too long for espeak-ng.

    Returns the folder to put on PYTHONPATH and the (deep, real, not linked) data folder, whose
    entries link to the installed ones.
    """
    root = tmp_path / ("a-deliberately-long-folder-name-" * 2) / ("and-one-more-level-" * 3)
    pkg = root / "espeakng_loader"
    data = pkg / "espeak-ng-data"
    data.mkdir(parents=True)
    src = Path(espeakng_loader.__file__).parent
    (pkg / "__init__.py").write_bytes((src / "__init__.py").read_bytes())
    for lib in src.glob("*.so*"):
        (pkg / lib.name).symlink_to(lib)
    for entry in REAL_DATA.iterdir():
        (data / entry.name).symlink_to(entry)
    assert len(os.fsencode(str(data))) > E.MAX_DATA_PATH
    assert len(os.fsencode(os.path.realpath(data))) > E.MAX_DATA_PATH
    return root, data


@pytest.fixture
def short_cache(tmp_path_factory, monkeypatch) -> Path:
    cache = tmp_path_factory.mktemp("c")
    monkeypatch.setenv("FAIRSER_CACHE", str(cache))
    return cache


def _use(monkeypatch, data: Path) -> None:
    monkeypatch.setattr(espeakng_loader, "get_data_path", lambda: str(data))


def test_short_install_path_is_used_as_it_is(monkeypatch, short_cache, tmp_path_factory):
    short = tmp_path_factory.mktemp("s") / "espeak-ng-data"  # an install in a short folder
    short.symlink_to(REAL_DATA)
    assert len(os.fsencode(str(short))) <= E.MAX_DATA_PATH
    _use(monkeypatch, short)
    assert E.data_path() == str(short)
    assert not (short_cache / "espeak").exists()


def test_long_data_path_gets_a_stable_short_link(monkeypatch, deep, short_cache):
    _, data = deep
    _use(monkeypatch, data)
    path = E.data_path()
    assert len(os.fsencode(path)) <= E.MAX_DATA_PATH and Path(path).parent == short_cache / "espeak"
    assert os.path.samefile(Path(path) / "phontab", REAL_DATA / "phontab")
    assert E.data_path() == path  # deterministic: the same install, the same link
    Path(path).unlink()  # a cleaned cache: made again
    assert E.data_path() == path and Path(path).is_symlink()
    Path(path).unlink()
    Path(path).symlink_to(short_cache)  # stale: points elsewhere
    assert E.data_path() == path and os.readlink(path) == os.path.realpath(data)
    assert [p.name for p in (short_cache / "espeak").iterdir()] == [Path(path).name]


def test_speak_works_from_a_deep_install(monkeypatch, deep, short_cache):
    """The worker process imports the deep package: espeak-ng initialises through the link."""
    root, _ = deep
    monkeypatch.setenv("PYTHONPATH", str(root))
    en, zh = E.speak([("Hello world.", "en"), ("你好。", "cmn")], sample_rate=16000)
    assert en.dtype == np.float32 and 0.5 < len(en) / 16000 < 3.0 and np.abs(en).max() > 0.05
    assert len(zh) > 4000
    assert len(list((short_cache / "espeak").iterdir())) == 1


def test_concurrent_processes_share_one_link(monkeypatch, deep, short_cache):
    root, _ = deep
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = "from fairser.corpora._espeak import data_path; print(data_path())"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = {p.communicate()[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outs) == 1
    assert [p.name for p in (short_cache / "espeak").iterdir()] == [Path(outs.pop()).name]


def test_long_cache_falls_back_to_a_private_tmp_folder(monkeypatch, deep, tmp_path):
    _, data = deep
    _use(monkeypatch, data)
    monkeypatch.setenv("FAIRSER_CACHE", str(tmp_path / ("c" * 200)))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))
    path = Path(E.data_path())
    assert path.parent == tmp_path / "t" / f"fairser-{os.getuid()}" and path.is_symlink()
    assert path.parent.stat().st_mode & 0o077 == 0  # private to this user
    assert (path / "phontab").is_file()


def test_without_links_the_data_is_copied(monkeypatch, deep, short_cache):
    _, data = deep
    _use(monkeypatch, data)

    def no_links(*_a, **_k):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", no_links)
    path = Path(E.data_path())
    assert not path.is_symlink() and (path / "phontab").is_file()
    assert E.data_path() == str(path)  # the finished copy is reused
    assert [p.name for p in (short_cache / "espeak").iterdir()] == [path.name]


def test_nowhere_short_to_link_is_a_clear_error(monkeypatch, deep, tmp_path):
    _, data = deep
    _use(monkeypatch, data)
    monkeypatch.setattr(E, "_short_dirs", lambda: [tmp_path / ("x" * 200)])
    with pytest.raises(CorpusError, match=r"at most 159\).*set FAIRSER_CACHE to a short"):
        E.data_path()


def test_failed_initialise_raises_instead_of_exiting(deep):
    """The deep path itself is too long for espeak-ng: an error, not exit() in espeak-ng."""
    _, data = deep
    code = ("import sys\nfrom fairser.corpora._espeak import open_session\n"
            "from fairser.errors import CorpusError\n"
            "try:\n    open_session(data=sys.argv[1]).__enter__()\n"
            "except CorpusError as exc:\n    print('raised:', exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"raised: espeak-ng: failed to initialise with its data at {data}")


def test_worker_errors_reach_the_caller_as_one_line():
    with pytest.raises(CorpusError, match=r"^espeak-ng: no voice 'no-such-voice'"):
        E.speak([("hello", "no-such-voice")])
    err = E.worker_error("speech synthesis", -11, "some C library noise\n")
    assert "(some C library noise; exit code -11)" in str(err)
