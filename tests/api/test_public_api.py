"""The thin top-level package: every name in __all__ resolves, and import stays light."""

from __future__ import annotations

import subprocess
import sys

import fairser


def test_all_matches_lazy_table():
    lazy = set(fairser._LAZY)
    assert lazy <= set(fairser.__all__)


def test_every_public_name_resolves():
    for name in fairser.__all__:
        assert getattr(fairser, name) is not None, name


def test_unknown_name_raises_attribute_error():
    try:
        fairser.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, fairser; "
        "print(','.join(m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
