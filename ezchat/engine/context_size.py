"""How large a context a Model asks llama.cpp for, and the one-line refusals when it cannot be
had: the default cap, the KV cache type names, RoPE scaling past the native context, and the
messages that name the memory a context would need."""

from __future__ import annotations

from ..errors import ModelLoadError
from .memory import KVCacheSize, available_memory, human_bytes, physical_memory

# A model's native context can be 128k tokens; allocating that KV cache by default would
# take gigabytes for a chat that uses a few thousand.
DEFAULT_MAX_CONTEXT = 8192

# llama.cpp's n_ctx is a uint32_t, which ctypes would wrap silently.
MAX_CONTEXT = 2**32 - 1

# The names type_k / type_v accept, and the ggml type numbers llama.cpp takes for them.
KV_CACHE_TYPES = {
    "f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "bf16": 30,
}  # fmt: skip

_FLOAT_CACHE_TYPES = frozenset({"f32", "f16", "bf16"})


def kv_cache_type_name(number: int) -> str:
    """The name of a KV cache type number (``1`` is ``"f16"``), or the number for one
    without a name here."""
    for name, value in KV_CACHE_TYPES.items():
        if value == number:
            return name
    return str(number)


def kv_type(value: int | str | None, name: str) -> int:
    """The ggml type number of a ``type_k`` / ``type_v`` argument (f16 when not given)."""
    if value is None:
        return KV_CACHE_TYPES["f16"]
    if isinstance(value, int):
        return value
    try:
        return KV_CACHE_TYPES[value.lower()]
    except KeyError:
        raise ValueError(
            f"{name} {value!r} is unknown: use one of {', '.join(KV_CACHE_TYPES)}"
        ) from None


def scaled_rope_freq_base(base_train: float, n_ctx_train: int, n_ctx: int, head_dim: int) -> float:
    """NTK-aware RoPE scaling: raise theta so the longest wavelength covers the longer context.

    This keeps short-range positions nearly untouched, which degrades quality much less than
    linear position interpolation.
    """
    if n_ctx <= n_ctx_train:
        return base_train
    scale = n_ctx / n_ctx_train
    exponent = head_dim / (head_dim - 2) if head_dim > 2 else 1.0
    return base_train * scale**exponent


class ContextSizeChecks:
    """Mixed into ``Model``: the checks and messages about its context's size, from the
    settings ``Model.__init__`` has set before it asks llama.cpp for anything."""

    filename: str
    context_length: int
    kv_cache: KVCacheSize | None
    type_k: int
    type_v: int
    flash_attn: bool
    _kv_in_ram: bool

    def _check_context_size(self) -> None:
        """Refuse a context llama.cpp cannot have before asking it, which would take the time
        to load the weights and then say only that the context failed."""
        memory = physical_memory()
        if self._kv_in_ram and self.kv_cache and memory and self.kv_cache.total > memory:
            raise ModelLoadError(
                self._context_too_large(f"more than this machine's {human_bytes(memory)} of RAM")
            )
        if self.context_length > MAX_CONTEXT:
            raise ModelLoadError(
                self._context_too_large(f"llama.cpp takes at most {MAX_CONTEXT:,} tokens")
            )

    def _context_failed(self) -> str:
        """Why llama.cpp could not create the context: too little memory for its KV cache,
        where that is so, else settings it refused (a quantised V cache without flash
        attention, for one)."""
        free = available_memory()
        size = self.kv_cache
        if self._kv_in_ram and size and free and size.total > free:
            return self._context_too_large(f"more than the {human_bytes(free)} of RAM free")
        v_cache = kv_cache_type_name(self.type_v)
        if not self.flash_attn and v_cache not in _FLOAT_CACHE_TYPES:
            return (
                f"{self.filename}: llama.cpp quantises the V cache ({v_cache}) only with flash "
                "attention; turn flash attention on, or use an f16 V cache"
            )
        needs = f" (its KV cache needs about {human_bytes(size.total)})" if size else ""
        return (
            f"{self.filename}: llama.cpp could not create a context of "
            f"{self.context_length:,} tokens{needs}; try a smaller context length or other "
            "KV cache settings"
        )

    def _context_too_large(self, why: str) -> str:
        n_ctx = self.context_length
        size = self.kv_cache
        if size is None:
            return (
                f"{self.filename}: a context of {n_ctx:,} tokens is too large ({why}); choose "
                "a smaller context length"
            )
        cache = f"{kv_cache_type_name(self.type_k)}/{kv_cache_type_name(self.type_v)}"
        fits = ""
        free = available_memory()
        if self._kv_in_ram and free:
            fits = f" (about {free // max(1, size.per_token):,} tokens fit in the RAM free now)"
        return (
            f"{self.filename}: a context of {n_ctx:,} tokens is too large: its KV cache would "
            f"need about {human_bytes(size.total)} ({size.shape()}, {cache}), {why}; choose a "
            f"smaller context length{fits}"
        )
