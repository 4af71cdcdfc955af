"""Reading configuration files: YAML -> mapping with key lines, paths, one-line errors.

The one place every config loader (``fairser run`` experiments, ``fairser train`` runs) reads
YAML and reports problems. It knows nothing about what the keys mean:

- :func:`read_yaml` reads a file into a :class:`YamlDocument` (the parsed data plus the node
  tree, so any key can be traced to its line); a missing file, a folder, a file that is not
  UTF-8, invalid YAML and a key written twice in one mapping are each one
  :class:`~fairser.errors.ConfigError` line naming the file (and line);
- :func:`expand_path` expands ``$VAR`` / ``${VAR}`` and ``~`` and resolves a relative path
  against the config's folder (an unset variable is an error naming it);
- :func:`validation_message` turns a pydantic ``ValidationError`` into one line
  ``FILE:LINE: dotted.key: problem; fix`` (unknown keys suggest the closest known key);
- :func:`validate` does both for a pydantic model.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from fairser.errors import ConfigError

__all__ = [
    "YamlDocument",
    "expand_path",
    "line_of",
    "read_yaml",
    "validate",
    "validation_message",
]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

#: Parts of a pydantic error location that are not keys (union members, validator wrappers).
_TYPE_TAGS = frozenset({"int", "float", "str", "bool", "dict", "list", "none", "bytes"})

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file.

    Attributes
    ----------
    path : Path
        The file.
    data : Any
        The parsed content (``{}`` for an empty file).
    node : yaml.Node or None
        The composed node tree (None for an empty file), for line numbers.
    """

    path: Path
    data: Any
    node: yaml.Node | None

    def line(self, loc: Sequence[Any]) -> int | None:
        """1-based line of the key at ``loc`` (see :func:`line_of`)."""
        return line_of(self.node, loc)

    def where(self, loc: Sequence[Any] = ()) -> str:
        """``FILE:LINE`` of ``loc`` (``FILE`` alone when no line is known)."""
        line = self.line(loc) if loc else None
        return f"{self.path}:{line}" if line else str(self.path)


def _duplicate_keys(node: yaml.Node | None, path: Path) -> None:
    """Raise on the first mapping key written twice (YAML would silently keep the last)."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise ConfigError(f"{path}:{line}: key {key.value!r} is written twice "
                                          f"(first on line {seen[key.value]}); keep one")
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def read_yaml(path: str | Path, *, what: str = "config") -> YamlDocument:
    """Read a YAML file into data plus its node tree.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str, default "config"
        What the file is, for messages.

    Returns
    -------
    YamlDocument

    Raises
    ------
    ConfigError
        Missing file, a folder, unreadable or non-UTF-8 bytes, invalid YAML (with its line), a
        key written twice in one mapping.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a {what} file; pass the YAML file")
    if not p.is_file():
        raise ConfigError(f"{p}: {what} file not found; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a UTF-8 text file (byte {exc.start}); save the YAML "
                          f"{what} as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the {what} file ({exc.strerror}); check the path "
                          "and its permissions") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{p}{line}: invalid YAML ({problem}); fix the syntax") from None
    _duplicate_keys(node, p)
    return YamlDocument(path=p, data={} if data is None else data, node=node)


def line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """1-based line of the key (or list item) at ``loc``; the deepest one found.

    A mapping key gives the line of the key itself (also when its value is a block on the next
    lines), a list index the line of the item.
    """
    line = None
    for part in loc:
        if node is None:
            break
        if line is None:
            line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    nxt = value
                    line = key.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
            if node is not None:
                line = node.start_mark.line + 1
        else:
            node = None
    return line


def expand_path(value: str, base: Path | str, *, where: str) -> Path:
    """Expand ``$VAR`` / ``${VAR}`` and ``~`` in ``value``; resolve it against ``base``.

    Raises
    ------
    ConfigError
        An environment variable is not set (``where`` names the key).
    """
    def sub(match: re.Match[str]) -> str:
        var = match.group(1) or match.group(2)
        if var not in os.environ:
            raise ConfigError(f"{where}: environment variable ${var} is not set; set it or "
                              "write the path into the config")
        return os.environ[var]

    path = Path(os.path.expanduser(_ENV.sub(sub, value)))
    if not path.is_absolute():
        path = Path(base) / path
    return path.resolve()


def _is_key(part: Any) -> bool:
    if isinstance(part, int):
        return True
    text = str(part)
    return not ("[" in text or "(" in text or text in _TYPE_TAGS
                or text.startswith(("function-", "tagged-union")))


def _fields_at(model: type[BaseModel] | None, loc: Sequence[Any]) -> list[str]:
    """Field names of the (nested) model holding the key at ``loc`` (empty if unknown)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = next((a for a in getattr(annotation, "__args__", (annotation,))
                        if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _shown(value: Any) -> str | None:
    if isinstance(value, bool | int | float | str) or value is None:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return None


def validation_message(exc: ValidationError, *, source: str, node: yaml.Node | None = None,
                       model: type[BaseModel] | None = None,
                       prefix: Sequence[Any] = ()) -> str:
    """One line for a pydantic error: ``SOURCE:LINE: dotted.key: problem; fix (+N more)``.

    Parameters
    ----------
    exc : ValidationError
        The error (its first problem is described; the count of the others is added).
    source : str
        The file name (or a label such as ``<demo>``).
    node : yaml.Node, optional
        The file's node tree, for the line.
    model : pydantic model class, optional
        The validated model, to suggest the closest key for an unknown one.
    prefix : sequence, optional
        Location of the validated mapping inside the file (e.g. ``("training",)``).
    """
    errors = exc.errors()
    err = errors[0]
    loc = tuple(prefix) + tuple(p for p in err["loc"] if _is_key(p))
    dotted = ".".join(str(p) for p in loc) or "<top>"
    line = line_of(node, loc)
    where = f"{source}:{line}" if line else source
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, tuple(p for p in err["loc"] if _is_key(p)))
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if known else []
        msg = (f"unknown key; did you mean {close[0]!r}? (or remove it)" if close else
               "unknown key; remove it or check the spelling")
    elif err["type"] == "missing":
        msg = "required key is missing; add it"
    else:
        shown = _shown(err.get("input"))
        if shown is not None and err["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {shown}); change the value"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {dotted}: {msg}{more}"


def validate(model: type[_M], data: Any, *, source: str, node: yaml.Node | None = None,
             prefix: Sequence[Any] = ()) -> _M:
    """``model.model_validate(data)``, any error as one :class:`ConfigError` line.

    Raises
    ------
    ConfigError
        ``data`` is not a mapping, or does not validate (see :func:`validation_message`).
    """
    if not isinstance(data, dict):
        where = f"{source}:{line_of(node, prefix)}" if prefix and node is not None else source
        raise ConfigError(f"{where}: expected a mapping of `key: value` lines, got "
                          f"{type(data).__name__}; see the examples under configs/")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, source=source, node=node, model=model,
                                             prefix=prefix)) from None
