"""fairser.levers sits above metrics and below models: it imports nothing higher."""

from __future__ import annotations

import ast
from pathlib import Path

import fairser.levers

ALLOWED = ("fairser.levers", "fairser.decision", "fairser.metrics", "fairser.errors",
           "fairser._io")


def test_levers_import_only_lower_layers() -> None:
    root = Path(fairser.levers.__file__).parent
    seen = set()
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                seen.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                seen.update((path.name, a.name) for a in node.names)
    internal = {(f, m) for f, m in seen if m.split(".")[0] == "fairser"}
    assert internal, "the scan found no fairser imports at all"
    bad = sorted((f, m) for f, m in internal if not m.startswith(ALLOWED))
    assert not bad, f"fairser.levers imports higher layers: {bad}"


def test_every_lever_class_is_registered() -> None:
    assert set(fairser.levers.LEVERS) == {"speaker-norm", "gender-eraser", "group-thresholds",
                                            "quadratic-gender-eraser", "principal-subspace"}
