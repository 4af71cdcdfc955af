"""Display order and names of methods, and the blocks (corpus, role, target) results split into.

Method names, labels and order come from the method registry (:data:`fairser.methods.METHODS`,
:func:`fairser.methods.method_label`), imported on first use so that importing the report stays
light. Rows that are not registered methods but are known to the report (the linear baseline,
written as ``linear-baseline`` or, by older runs, ``linear-probe``) come first; unknown names
follow the registry in order of appearance and are shown as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pandas as pd

__all__ = [
    "EXTRA_METHODS",
    "block_columns",
    "block_title",
    "method_label",
    "method_order",
    "method_rank",
    "ordered_blocks",
]

#: Rows that are not registered methods, in display order, with their display names.
EXTRA_METHODS: dict[str, str] = {
    "linear-baseline": "Linear baseline",
    "linear-probe": "Linear probe",
}

_BLOCK_CANDIDATES = ("condition", "target", "role", "corpus")
_ROLE_ORDER = {"source": 0, "target": 1}


@cache
def method_order() -> tuple[str, ...]:
    """Known method names in display order: :data:`EXTRA_METHODS`, then the registry's."""
    from fairser.methods import METHODS

    return (*EXTRA_METHODS, *METHODS)


def method_label(method: str, sweep: str = "") -> str:
    """Display name of a method (the registry's label), with its sweep point in brackets."""
    from fairser.methods import method_label as registered

    label = EXTRA_METHODS.get(method) or registered(method)
    return f"{label} ({sweep})" if sweep else label


def _appearance(values: Iterable) -> dict:
    order: dict = {}
    for v in values:
        order.setdefault(v, len(order))
    return order


def method_rank(methods: Iterable[str]) -> dict[str, int]:
    """Rank of each method: :func:`method_order` first, then the others in appearance order."""
    seen = _appearance(methods)
    known = {m: i for i, m in enumerate(method_order())}
    extra = sorted((m for m in seen if m not in known), key=seen.__getitem__)
    return {
        **{m: known[m] for m in seen if m in known},
        **{m: len(known) + i for i, m in enumerate(extra)},
    }


def block_columns(df: pd.DataFrame) -> list[str]:
    """Columns that split results into blocks: condition and target only when they vary."""
    cols = []
    for col in _BLOCK_CANDIDATES:
        if col in ("role", "corpus") or df[col].nunique() > 1:
            cols.append(col)
    return cols


def ordered_blocks(df: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """Split into blocks (see :func:`block_columns`) in display order: source before target."""
    cols = block_columns(df)
    orders = {c: _appearance(df[c]) for c in cols}
    groups = []
    for key, part in df.groupby(cols, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        values = dict(zip(cols, key, strict=True))
        rank = tuple(
            _ROLE_ORDER.get(values[c], 2) if c == "role" else orders[c][values[c]] for c in cols
        )
        groups.append((rank, values, part))
    groups.sort(key=lambda g: g[0])
    return [(values, part) for _, values, part in groups]


def block_title(values: dict) -> str:
    """Heading of a block, e.g. ``casia (target)`` or ``ravdess (source), target casia``."""
    title = f"{values['corpus']} ({values['role']})"
    extra = []
    if values.get("target") and not (
        values["role"] == "target" and values["target"] == values["corpus"]
    ):
        extra.append(f"target {values['target']}")
    if values.get("condition"):
        extra.append(f"condition {values['condition']}")
    return ", ".join([title, *extra])
