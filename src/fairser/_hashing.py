"""The one content/config hash of fairser: a stable SHA-256 of a JSON-serialisable payload.

Used for feature-store folder names (full hex) and run/spec ids (short prefix). Keys are
sorted and non-JSON values (paths, enums) are written with ``str``, so equal configurations
hash equally across processes and machines.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def config_hash(payload: Any, *, length: int | None = None) -> str:
    """Stable SHA-256 (hex) of ``payload``; the first ``length`` characters when given."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest if length is None else digest[:length]
