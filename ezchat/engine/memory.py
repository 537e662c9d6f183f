"""How much memory a context's KV cache takes, from a GGUF's facts, and how much this machine
has: llama.cpp only says that it failed to create the context, not that it was too large."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .gguf import GGML_TYPES, GGUFInfo


@dataclass(frozen=True, slots=True)
class KVCacheSize:
    """The K and V caches of every layer for ``n_ctx`` tokens."""

    n_ctx: int
    per_token: int  # bytes, all layers, K and V
    n_layer: int
    n_head_kv: int  # the largest, where layers differ
    head_dim: int

    @property
    def total(self) -> int:
        return self.per_token * self.n_ctx

    def shape(self) -> str:
        return f"{self.n_layer} layers x {self.n_head_kv} KV heads x {self.head_dim} dims"


def kv_cache_size(info: GGUFInfo, n_ctx: int, type_k: int, type_v: int) -> KVCacheSize | None:
    """llama.cpp's KV cache for ``n_ctx`` tokens with cache types ``type_k``/``type_v`` (ggml
    type numbers), or None where the GGUF lacks the facts. Sliding-window layers, which some
    models cache for fewer tokens, are counted in full: this is an upper bound."""
    n_layer = info.arch_value("block_count")
    n_head = info.arch_value("attention.head_count")
    if not isinstance(n_layer, int) or n_layer <= 0:
        return None
    heads = _per_layer(n_head, n_layer)
    kv_heads = _per_layer(info.arch_value("attention.head_count_kv", n_head), n_layer)
    if heads is None or kv_heads is None:
        return None
    embed = info.arch_value("embedding_length", 0)
    widest = max(heads) or 1
    default_dim = embed // widest if isinstance(embed, int) and embed > 0 else 128
    dim_k = info.arch_value("attention.key_length") or default_dim
    dim_v = info.arch_value("attention.value_length") or default_dim
    if not isinstance(dim_k, int) or not isinstance(dim_v, int):
        return None
    per_token = sum(
        heads_kv * (dim_k * _bytes_per_element(type_k) + dim_v * _bytes_per_element(type_v))
        for heads_kv in kv_heads
    )
    return KVCacheSize(n_ctx, int(per_token), n_layer, max(kv_heads), dim_k)


def _per_layer(value: object, n_layer: int) -> list[int] | None:
    """A head count as one number per layer (some architectures give a list)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n_layer
    if isinstance(value, list) and len(value) == n_layer and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def _bytes_per_element(ggml_type: int) -> float:
    _, block, size = GGML_TYPES.get(ggml_type, ("F16", 1, 2))
    return size / block


def physical_memory() -> int | None:
    """This machine's RAM in bytes, where the system says."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> int | None:
    """RAM that can be had without swapping (Linux's MemAvailable), else all of it."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory()


def human_bytes(n: float) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    if n >= 2**10:
        return f"{n / 2**10:.1f} KiB"
    return f"{int(n)} bytes"
