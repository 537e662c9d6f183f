"""Hostile GGUF files for the tests: a real model's copy with chosen string metadata."""

from __future__ import annotations

import struct
from pathlib import Path

_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(data: bytes, pos: int, kind: int) -> int:
    if kind in _FIXED_SIZES:
        return pos + _FIXED_SIZES[kind]
    if kind == 8:  # string
        return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
    if kind == 9:  # array
        item, count = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if item in _FIXED_SIZES:
            return pos + _FIXED_SIZES[item] * count
        for _ in range(count):
            pos = _skip_value(data, pos, item)
        return pos
    raise ValueError(f"GGUF value type {kind}")


def _gguf_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def craft_gguf(source: Path, target: Path, strings: dict[str, str]) -> Path:
    """A copy of the GGUF ``source`` with the string metadata ``strings`` set (replaced, or
    added); the tensor table and data are the same bytes, so llama.cpp loads the same model."""
    data = source.read_bytes()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    pos, entries, alignment = 24, {}, 32
    for _ in range(n_kv):
        start = pos
        key_length = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8 : pos + 8 + key_length].decode()
        pos += 8 + key_length
        kind = struct.unpack_from("<I", data, pos)[0]
        if key == "general.alignment":
            alignment = struct.unpack_from("<I", data, pos + 4)[0]
        pos = _skip_value(data, pos + 4, kind)
        entries[key] = data[start:pos]
    kv_end = pos
    for _ in range(n_tensors):
        pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        pos += 4 + 8 * struct.unpack_from("<I", data, pos)[0] + 4 + 8
    data_start = -(-pos // alignment) * alignment
    for key, value in strings.items():
        entries[key] = _gguf_string(key) + struct.pack("<I", 8) + _gguf_string(value)
    header = struct.pack("<4sIQQ", magic, version, n_tensors, len(entries))
    header += b"".join(entries.values()) + data[kv_end:pos]
    target.write_bytes(header + b"\0" * (-len(header) % alignment) + data[data_start:])
    return target
