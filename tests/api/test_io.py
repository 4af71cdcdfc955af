from __future__ import annotations

import os
import stat

import pytest

from fairser._io import atomic_path, atomic_write_text


def test_atomic_write_publishes_with_ordinary_permissions(tmp_path):
    out = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert out.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in out.parent.iterdir()] == ["a.txt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
