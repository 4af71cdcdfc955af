"""fairser._config_io: YAML with key lines, path expansion, one-line validation errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from fairser._config_io import expand_path, line_of, read_yaml, validate
from fairser.errors import ConfigError


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frontend: str = "logmel"
    layers: list[int] | Literal["all"] | None = None


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    source: str
    seeds: list[int] = Field(default_factory=lambda: [0])
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    features: _Inner = Field(default_factory=_Inner)


def _yaml(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "c.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_lines_of_nested_keys_and_list_items(tmp_path):
    doc = read_yaml(_yaml(tmp_path, "source: a:/r\nfeatures:\n  frontend: x\n"
                                    "  layers: [1, 2]\nseeds:\n  - 0\n  - 5\n"))
    assert doc.data["features"]["layers"] == [1, 2]
    assert doc.line(("features", "frontend")) == 3
    assert doc.line(("seeds", 1)) == 7
    assert doc.where(("features",)) == f"{doc.path}:2"
    assert line_of(None, ("x",)) is None


@pytest.mark.parametrize(("content", "fragment"), [
    (b"\xff\xfesource: a\n", "not a UTF-8 text file (byte 0)"),
    ("source: [unclosed\n", ":2: invalid YAML"),
    ("source: a\nseeds: [0]\nsource: b\n", ":3: key 'source' is written twice (first on line 1)"),
    ("features:\n  frontend: a\n  frontend: b\n", ":3: key 'frontend' is written twice"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, content, fragment):
    with pytest.raises(ConfigError) as info:
        read_yaml(_yaml(tmp_path, content))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_file_folder_and_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        read_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        read_yaml(tmp_path)
    assert read_yaml(_yaml(tmp_path, "# only a comment\n")).data == {}


def test_expand_path_env_home_relative(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGIO_ROOT", str(tmp_path / "data"))
    assert expand_path("${CFGIO_ROOT}/x", "/base", where="k") == (tmp_path / "data/x").resolve()
    assert expand_path("$CFGIO_ROOT", "/base", where="k") == (tmp_path / "data").resolve()
    assert expand_path("rel/dir", tmp_path, where="k") == (tmp_path / "rel/dir").resolve()
    assert expand_path("~/x", "/base", where="k") == (Path.home() / "x").resolve()
    monkeypatch.delenv("CFGIO_ROOT")
    with pytest.raises(ConfigError, match=r"^c.yaml:3: source: environment variable "
                                          r"\$CFGIO_ROOT is not set"):
        expand_path("$CFGIO_ROOT/x", "/base", where="c.yaml:3: source")


@pytest.mark.parametrize(("text", "expected"), [
    ("source: a\nseedz: [1]\n", ":2: seedz: unknown key; did you mean 'seeds'? (or remove it)"),
    ("source: a\nfeatures:\n  frontnd: x\n", ":3: features.frontnd: unknown key; did you mean "
                                             "'frontend'?"),
    ("source: a\nfeatures: {zzz: 1}\n", ":2: features.zzz: unknown key; remove it or check"),
    ("seeds: [0]\n", ": source: required key is missing; add it"),
    ("source: a\nlr: 1e300\n", ":2: lr: Input should be less than or equal to 1 (got '1e300'); "
                               "change the value"),
    ("source: a\nlr: .nan\n", ":2: lr: Input should be a finite number"),
    ("source: a\nseeds: [0, x]\n", ":2: seeds.1: Input should be a valid integer"),
    ("source: a\nfeatures: {layers: [a]}\n", ":2: features.layers.0: Input should be a valid "
                                             "integer"),
])
def test_validation_errors_name_file_line_key_and_fix(tmp_path, text, expected):
    doc = read_yaml(_yaml(tmp_path, text))
    with pytest.raises(ConfigError) as info:
        validate(_Outer, doc.data, source=str(doc.path), node=doc.node)
    msg = str(info.value)
    assert msg.startswith(str(doc.path)) and expected in msg, msg
    assert "\n" not in msg


def test_validate_with_prefix_points_inside_the_file(tmp_path):
    doc = read_yaml(_yaml(tmp_path, "name: x\ntraining:\n  source: a\n  lr: -1\n"))
    with pytest.raises(ConfigError, match=r"c.yaml:4: training.lr: Input should be greater"):
        validate(_Outer, doc.data["training"], source=str(doc.path), node=doc.node,
                 prefix=("training",))
    with pytest.raises(ConfigError, match="expected a mapping"):
        validate(_Outer, [1, 2], source="c.yaml")
