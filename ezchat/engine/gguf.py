"""Reading a GGUF file's header and metadata without loading its weights.

llama.cpp aborts the process on some malformed files; checking the header here first turns
every bad file into a ``ModelLoadError`` that names the path and what is wrong.
"""

from __future__ import annotations

import functools
import mmap
import stat
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError

GGUF_MAGIC = b"GGUF"
# Arrays longer than this (the vocabulary, merges) are summarised, not read into Python.
MAX_ARRAY_ITEMS = 1024
# llama.cpp refuses any array of arrays, and gguf-py writes them only as deep as its caller's
# data; deeper nesting is a damaged or hostile file, and each level is a Python stack frame.
MAX_ARRAY_DEPTH = 16

# fmt: off
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9

# ggml type id -> (name, elements per block, bytes per block); used to find where tensor data ends.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}

# general.file_type -> the quantisation name llama.cpp's quantize tool prints
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}
# fmt: on


@dataclass(slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    def n_bytes(self) -> int | None:
        known = GGML_TYPES.get(self.ggml_type)
        if known is None:
            return None
        _, block, size = known
        return self.n_elements // block * size


@dataclass(slots=True)
class GGUFInfo:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(repr=False)
    array_lengths: dict[str, int] = field(repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: Any = None) -> Any:
        """A per-architecture key such as ``context_length`` (``llama.context_length``)."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def n_params(self) -> int:
        return sum(tensor.n_elements for tensor in self.tensors)

    @property
    def quantization(self) -> str:
        file_type = self.metadata.get("general.file_type")
        if isinstance(file_type, int) and file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        return "unknown"

    @property
    def chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) and template.strip() else None


class _Reader:
    def __init__(
        self, buffer: mmap.mmap | bytes, path: Path, full_arrays: Collection[str] = ()
    ) -> None:
        self.buffer = buffer
        self.pos = 0
        self.path = path
        self.full_arrays = full_arrays

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buffer):
            raise self.truncated()
        (value,) = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("<Q")
        if self.pos + length > len(self.buffer):
            raise self.truncated()
        raw = bytes(self.buffer[self.pos : self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def value(self, value_type: int, key: str, lengths: dict[str, int], depth: int = 0) -> Any:
        if value_type in _SCALARS:
            return self.take(_SCALARS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise ModelLoadError(
                    f"{self.path}: metadata key {key!r} nests arrays more than "
                    f"{MAX_ARRAY_DEPTH} deep, which no model file does; the file is damaged "
                    "or made to break readers: download it again from a source you trust"
                )
            item_type = self.take("<I")
            count = self.take("<Q")
            lengths[key] = count
            if key in self.full_arrays and count > MAX_ARRAY_ITEMS:
                return self.long_array(item_type, count, key, depth + 1)
            if count > MAX_ARRAY_ITEMS:
                self.skip_array(item_type, count, key, depth + 1)
                return f"<array of {count} items>"
            return [self.value(item_type, key, {}, depth + 1) for _ in range(count)]
        raise ModelLoadError(
            f"{self.path}: metadata key {key!r} has unknown value type {value_type}; "
            "the file is damaged or from a newer GGUF version: re-download or update ezchat"
        )

    def long_array(self, item_type: int, count: int, key: str, depth: int) -> list[Any]:
        """A whole long array (a vocabulary is 32k to 262k items), read in bulk: item by item
        it takes seconds."""
        if item_type in _SCALARS:
            items = struct.Struct(f"<{count}{_SCALARS[item_type][1]}")
            if self.pos + items.size > len(self.buffer):
                raise self.truncated()
            values = list(items.unpack_from(self.buffer, self.pos))
            self.pos += items.size
            return values
        if item_type != _STRING:
            return [self.value(item_type, key, {}, depth) for _ in range(count)]
        buffer, pos, end = self.buffer, self.pos, len(self.buffer)
        length_at = struct.Struct("<Q").unpack_from
        strings = []
        for _ in range(count):
            if pos + 8 > end:
                raise self.truncated()
            (length,) = length_at(buffer, pos)
            pos += 8
            if pos + length > end:
                raise self.truncated()
            strings.append(str(buffer[pos : pos + length], "utf-8", "replace"))
            pos += length
        self.pos = pos
        return strings

    def skip_array(self, item_type: int, count: int, key: str, depth: int) -> None:
        if item_type in _SCALARS:
            self.pos += struct.calcsize(_SCALARS[item_type]) * count
            if self.pos > len(self.buffer):
                raise self.truncated()
        else:
            for _ in range(count):
                self.value(item_type, key, {}, depth)

    def truncated(self) -> ModelLoadError:
        return ModelLoadError(
            f"{self.path}: the GGUF file is truncated (incomplete download?); download it again"
        )


def read_gguf(path: str | Path, full_arrays: Collection[str] = ()) -> GGUFInfo:
    """Read and check a GGUF file's header, metadata and tensor table. The arrays named in
    ``full_arrays`` (say, ``tokenizer.ggml.tokens``) are read whole, however long."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file; check the path or set EZCHAT_MODEL")
    if path.is_dir():
        raise ModelLoadError(
            f"{path}: is a folder, not a model file; give the path of a .gguf file"
        )
    if not path.is_file():  # opening a FIFO would wait for a writer, a device never ends
        raise ModelLoadError(
            f"{path}: is {_special_kind(path)}, not a model file; give the path of a .gguf file"
        )
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                if handle.read(4) == GGUF_MAGIC:
                    raise _Reader(b"", path).truncated()
                raise ModelLoadError(
                    f"{path}: not a GGUF model file (too small); pick a .gguf file"
                )
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _parse(buffer, path, size, full_arrays)
    except PermissionError:
        raise ModelLoadError(f"{path}: permission denied; make the file readable") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _special_kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, name in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _parse(buffer: mmap.mmap, path: Path, size: int, full_arrays: Collection[str] = ()) -> GGUFInfo:
    if buffer[:4] != GGUF_MAGIC:
        raise ModelLoadError(
            f"{path}: not a GGUF model file (bad magic {bytes(buffer[:4])!r}); "
            "ezchat needs a .gguf file (convert others with llama.cpp's convert_hf_to_gguf.py)"
        )
    reader = _Reader(buffer, path, full_arrays)
    reader.pos = 4
    version = reader.take("<I")
    if version not in (2, 3):
        raise ModelLoadError(f"{path}: unsupported GGUF version {version}; expected 2 or 3")
    n_tensors = reader.take("<Q")
    n_kv = reader.take("<Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ModelLoadError(f"{path}: the GGUF header is corrupt (implausible counts)")
    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(n_kv):
        key = reader.string()
        metadata[key] = reader.value(reader.take("<I"), key, lengths)
    tensors = []
    for _ in range(n_tensors):
        name = reader.string()
        n_dims = reader.take("<I")
        if n_dims > 8:
            raise ModelLoadError(
                f"{path}: tensor {name!r} has {n_dims} dimensions; the file is corrupt"
            )
        shape = tuple(reader.take("<Q") for _ in range(n_dims))
        tensors.append(TensorInfo(name, shape, reader.take("<I"), reader.take("<Q")))
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = 32
    data_start = -(-reader.pos // alignment) * alignment
    data_end = data_start
    for tensor in tensors:
        n_bytes = tensor.n_bytes()
        data_end = max(data_end, data_start + tensor.offset + (n_bytes or 0))
    if data_end > size:
        raise reader.truncated()
    return GGUFInfo(path, version, metadata, tensors, lengths)


# llama.cpp's token types that a tokenizer never makes from plain text: control, user-defined
_SPECIAL_TYPES = (3, 4)
_VOCAB_KEYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type")


@functools.lru_cache(maxsize=8)
def _special_tokens(path: Path, mtime_ns: int) -> frozenset[str] | None:
    metadata = read_gguf(path, full_arrays=_VOCAB_KEYS).metadata
    tokens, types = (metadata.get(key) for key in _VOCAB_KEYS)
    if not isinstance(tokens, list) or not isinstance(types, list):
        return None
    # a damaged file's arrays may differ in length: pair what both hold
    return frozenset(
        text for text, kind in zip(tokens, types, strict=False) if kind in _SPECIAL_TYPES
    )


def special_tokens(path: str | Path) -> frozenset[str] | None:
    """The texts of a GGUF's special tokens, or None when the file does not type its tokens.
    Cached per file: a 262k-token vocabulary takes a fraction of a second to read."""
    path = Path(path)
    return _special_tokens(path, path.stat().st_mtime_ns)
