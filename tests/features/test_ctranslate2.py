"""CTranslate2 model.bin reader on generated files (every dtype, quantization, aliases)."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from fairser.errors import FeatureError
from fairser.features.ctranslate2 import ChainedReader, read_ctranslate2


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(variables: dict[str, tuple[np.ndarray, int]], aliases: dict[str, str], *,
              version: int = 6, spec: str = "TestSpec") -> bytes:
    """Serialise like ctranslate2's ModelSpec.save (dtype ids: 0 f32, 1 i8, 4 f16, 5 bf16)."""
    out = [struct.pack("<I", version), _string(spec), struct.pack("<I", 3),
           struct.pack("<I", len(variables))]
    for name, (arr, dtype_id) in variables.items():
        out += [_string(name), struct.pack("<B", arr.ndim)]
        out += [struct.pack("<I", d) for d in arr.shape]
        raw = arr.tobytes()
        out += [struct.pack("<B", dtype_id), struct.pack("<I", len(raw)), raw]
    out.append(struct.pack("<I", len(aliases)))
    for a, b in aliases.items():
        out += [_string(a), _string(b)]
    return b"".join(out)


def test_reads_every_dtype_quantization_and_aliases() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    scale = (127 / np.abs(w).max(axis=1)).astype(np.float32)
    q = np.round(w * scale[:, None]).astype(np.int8)
    bf16 = (w.view(np.uint32) >> 16).astype(np.uint16)
    blob = write_ct2({
        "a/weight": (w.astype(np.float16), 4),
        "b/weight": (q, 1), "b/weight_scale": (scale, 0),
        "c/weight": (bf16, 5),
        "d/flag": (np.array(1, np.int8), 1),
        "e/skipped": (np.zeros(5, np.float32), 0),
    }, {"z/weight": "a/weight"})
    model = read_ctranslate2(io.BytesIO(blob), keep=lambda n: not n.startswith("e/"))
    assert model.spec == "TestSpec" and model.revision == 3 and model.binary_version == 6
    assert model.names == ["a/weight", "b/weight", "b/weight_scale", "c/weight", "d/flag",
                           "e/skipped"]
    assert "e/skipped" not in model.variables
    np.testing.assert_allclose(model.get("a/weight"), w, atol=2e-3)
    np.testing.assert_allclose(model.get("b/weight"), w, atol=np.abs(w).max() / 127)
    np.testing.assert_allclose(model.get("c/weight"), w, rtol=1e-2)
    np.testing.assert_array_equal(model.get("z/weight"), model.get("a/weight"))
    assert model.get("d/flag").shape == () and model.get("d/flag") == 1
    with pytest.raises(FeatureError, match="missing"):
        model.get("nope")


def test_rejects_bad_version_dtype_and_truncation() -> None:
    good = write_ct2({"x": (np.ones(3, np.float32), 0)}, {})
    with pytest.raises(FeatureError, match="binary version 99"):
        read_ctranslate2(io.BytesIO(struct.pack("<I", 99) + good[4:]))
    with pytest.raises(FeatureError, match="unknown CTranslate2 dtype id 9"):
        read_ctranslate2(io.BytesIO(write_ct2({"x": (np.ones(3, np.float32), 9)}, {})))
    with pytest.raises(FeatureError, match="truncated"):
        read_ctranslate2(io.BytesIO(good[:-10]))


def test_chained_reader_hashes_across_parts(tmp_path) -> None:
    import hashlib

    data = bytes(range(256)) * 1000
    parts = [tmp_path / f"p{i}" for i in range(3)]
    for p, chunk in zip(parts, (data[:1000], data[1000:1001], data[1001:]), strict=True):
        p.write_bytes(chunk)
    reader = ChainedReader(parts)
    got = io.BufferedReader(reader, buffer_size=4096).read()
    assert got == data and reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
