"""``Model``: a GGUF file loaded into llama.cpp, with the facts about it and ways to run it."""

from __future__ import annotations

import contextlib
import ctypes
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from .. import utf8
from ..chat.samplers import SamplerSettings
from ..errors import GenerationError, ModelLoadError, ModelUnloadedException, PromptTooLongError
from .calls import GenerationCalls
from .cpu import ThreadCount, default_thread_count
from .decoder import Decoder
from .generation import Generation, top_candidates
from .gguf import GGUFInfo, read_gguf, special_tokens
from .grow import Growth, start_grow
from .load_progress import reporting_progress
from .memory import available_memory, human_bytes, kv_cache_size, physical_memory
from .results import Candidate, EvalReport, GenerationResult, ProgressReport, TokenEvent
from .sampling import build_chain

__all__ = [
    "DEFAULT_MAX_CONTEXT",
    "KV_CACHE_TYPES",
    "GenerationResult",
    "Model",
    "ModelLoadError",
    "ModelUnloadedException",
    "TokenEvent",
]

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


def _default_sampler() -> SamplerSettings:
    from ..chat import samplers

    return samplers.load_default()


def _kv_type(value: int | str | None, name: str) -> int:
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


def _gpu_build() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


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


def llama_system_info() -> str:
    """llama.cpp's own line of the features the library was built with (AVX2 = 1 | ...)."""
    return " ".join(llama_cpp.llama_print_system_info().decode("utf-8", "replace").split())


class Model(GenerationCalls):
    """A GGUF model loaded with llama.cpp.

    Only one generation runs at a time per Model; it keeps the KV cache between calls, so a
    prompt that starts like the previous one evaluates only what is new.
    """

    can_save_state = True  # its KV cache lives here, so a chat can save and restore it

    def __init__(
        self,
        model_path: str | Path,
        context_length: int | None = None,
        n_gpu_layers: int = 0,
        offload_kqv: bool = True,
        flash_attn: bool = False,
        verbose: bool = False,
        *,
        type_k: int | str | None = None,
        type_v: int | str | None = None,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = -1,
        lora_path: str | Path | None = None,
        progress: ProgressReport | None = None,
    ) -> None:
        """``progress``, if given, is called on this thread with the fraction of the weights
        loaded (0.0 to 1.0) as llama.cpp reads them; returning ``False`` stops the load, which
        then raises ``LoadCancelled``."""
        self._llama: llama_cpp.Llama | None = None
        self.verbose = verbose
        info = read_gguf(model_path)
        self.gguf: GGUFInfo = info
        self.metadata: dict[str, Any] = info.metadata
        self.filename = str(Path(model_path).expanduser())

        self.n_ctx_train = int(info.arch_value("context_length", 0) or 4096)
        self.rope_freq_base_train = float(info.arch_value("rope.freq_base", 10000.0))
        n_head = int(info.arch_value("attention.head_count", 1) or 1)
        n_head_kv = info.arch_value("attention.head_count_kv", n_head) or n_head
        if isinstance(n_head_kv, list):  # per-layer head counts in some architectures
            n_head_kv = max(n_head_kv) or n_head
        embed = int(info.arch_value("embedding_length", 0) or 0)
        head_dim = int(
            info.arch_value("attention.key_length", 0) or (embed // n_head if embed else 128)
        )

        if context_length is None or context_length <= 0:
            context_length = min(self.n_ctx_train, DEFAULT_MAX_CONTEXT)
        self.context_length = int(context_length)
        self.type_k = _kv_type(type_k, "type_k")
        self.type_v = _kv_type(type_v, "type_v")
        self.kv_cache = kv_cache_size(info, self.context_length, self.type_k, self.type_v)
        self._kv_in_ram = not (n_gpu_layers and offload_kqv and _gpu_build())
        self._check_context_size()
        self.ctx_scale = self.context_length / self.n_ctx_train
        self.rope_freq_base = scaled_rope_freq_base(
            self.rope_freq_base_train, self.n_ctx_train, self.context_length, head_dim
        )
        if self.ctx_scale > 1:
            warnings.warn(
                f"context length {self.context_length} is {self.ctx_scale:.2f}x the model's native "
                f"{self.n_ctx_train}; RoPE base raised to {self.rope_freq_base:.0f}, expect lower "
                "quality (use a context of at most the native length to avoid this)",
                stacklevel=2,
            )
        self.n_gpu_layers = n_gpu_layers
        self.offload_kqv = offload_kqv
        self.flash_attn = flash_attn
        # llama.cpp's default (physical performance cores) for generation and prompt batches
        # alike, as llama.cpp itself does; llama-cpp-python's would halve it without SMT.
        chosen = ThreadCount(n_threads, "given") if n_threads else default_thread_count()
        self.n_threads = chosen.count
        self.threads_how = chosen.how
        self.n_batch = max(1, min(n_batch, self.context_length))
        self.seed = seed
        self.lora_path = str(lora_path) if lora_path else None
        self.n_gqa = int(n_head // n_head_kv) if n_head_kv else 1
        if self.lora_path and not Path(self.lora_path).is_file():
            raise ModelLoadError(f"{self.lora_path}: no such LoRA adapter file; check the path")

        with reporting_progress(progress) as load:
            try:
                self._llama = llama_cpp.Llama(
                    self.filename,
                    n_ctx=self.context_length,
                    n_batch=self.n_batch,
                    n_ubatch=self.n_batch,
                    n_gpu_layers=n_gpu_layers,
                    offload_kqv=offload_kqv,
                    flash_attn=flash_attn,
                    rope_freq_base=self.rope_freq_base if self.ctx_scale > 1 else 0.0,
                    type_k=self.type_k,
                    type_v=self.type_v,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    seed=seed if seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
                    lora_path=self.lora_path,
                    verbose=verbose,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                load.raise_if_stopped(self.filename)
                if "llama_context" in str(exc):  # the weights loaded; the context did not
                    raise ModelLoadError(self._context_failed()) from None
                raise ModelLoadError(
                    f"{self.filename}: llama.cpp could not load the model ({exc}); the file may be "
                    "damaged or need a newer llama-cpp-python"
                ) from None

        llama = self._llama
        # llama-cpp-python's public handles; ezchat's own decoder and sampler chains use them
        self._model_ptr = llama.model
        self._vocab_ptr = llama_cpp.llama_model_get_vocab(llama.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab_ptr))
        self.n_layer = int(llama_cpp.llama_model_n_layer(self._model_ptr))
        self.n_params = int(llama_cpp.llama_model_n_params(self._model_ptr))
        self.n_ctx = self.context_length
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab_ptr))
        vocab = self._vocab_ptr
        self.bos_token = int(llama_cpp.llama_vocab_bos(vocab))
        self.eos_token = int(llama_cpp.llama_vocab_eos(vocab))
        self.eot_token = _optional_token(llama_cpp.llama_vocab_eot(vocab))
        self.nl_token = _optional_token(llama_cpp.llama_vocab_nl(vocab))
        self.prefix_token = _optional_token(llama_cpp.llama_vocab_fim_pre(vocab))
        self.middle_token = _optional_token(llama_cpp.llama_vocab_fim_mid(vocab))
        self.suffix_token = _optional_token(llama_cpp.llama_vocab_fim_suf(vocab))
        self.cls_token = (
            _optional_token(llama_cpp.llama_vocab_bos(vocab)) if self._is_bert() else None
        )
        self.sep_token = _optional_token(llama_cpp.llama_vocab_sep(vocab))

        self._decoder = Decoder(llama.ctx, self.context_length, self.n_batch, self.n_vocab)
        self._pieces: list[bytes | None] = [None] * self.n_vocab
        self._stop_cache: dict[int, bool] = {}
        self._vocab_list: list[str] | None = None
        self._busy = False

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

    # --- facts ---------------------------------------------------------------------------------

    @property
    def llama(self) -> llama_cpp.Llama:
        return self._require()

    @property
    def vocab(self) -> list[str]:
        """Every token's text as stored in the GGUF vocabulary (built on first use)."""
        if self._vocab_list is None:
            self._require()
            get_text = llama_cpp.llama_vocab_get_text
            self._vocab_list = [
                get_text(self._vocab_ptr, i).decode("utf-8", errors="replace")
                for i in range(self.n_vocab)
            ]
        return self._vocab_list

    @property
    def runs_in_process(self) -> bool:
        return True  # the Backend protocol's answer: llama.cpp runs here

    @property
    def native_model(self) -> llama_cpp.llama_model_p:
        """llama.cpp's model handle, for engine code that builds its own context or chain on
        these weights (batched decoding)."""
        return self._model_ptr

    @property
    def native_vocab(self) -> llama_cpp.llama_vocab_p:
        return self._vocab_ptr

    @property
    def is_loaded(self) -> bool:
        return self._llama is not None

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or Path(self.filename).stem)

    @property
    def quantization(self) -> str:
        return self.gguf.quantization

    @property
    def description(self) -> str:
        return f"{self.name} ({self.quantization})"

    @property
    def special_tokens(self) -> frozenset[str] | None:
        """The texts of the vocabulary's control and user-defined tokens, from the GGUF (None
        where the file does not type its tokens); ``auto_format`` checks markers against them."""
        return special_tokens(self.gguf.path)

    @property
    def can_shift_context(self) -> bool:
        return self._require_decoder().can_shift

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens the KV cache holds now (a copy)."""
        return list(self._require_decoder().tokens)

    @property
    def last_eval(self) -> EvalReport:
        return self._require_decoder().last

    def _is_bert(self) -> bool:
        return self.gguf.architecture in ("bert", "nomic-bert", "jina-bert-v2")

    def __repr__(self) -> str:
        state = "" if self.is_loaded else ", unloaded"
        return (
            f"Model({self.filename!r}, context_length={self.context_length}, "
            f"n_gpu_layers={self.n_gpu_layers}{state})"
        )

    # --- lifetime ------------------------------------------------------------------------------

    def unload(self) -> None:
        """Free the model's memory. Using the Model afterwards raises ModelUnloadedException."""
        if self._llama is None:
            return
        self._decoder.close()
        self._llama.close()
        self._llama = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unload()

    def __del__(self) -> None:
        # at interpreter shutdown llama_cpp may be gone already
        with contextlib.suppress(Exception):
            self.unload()

    def _require(self) -> llama_cpp.Llama:
        if self._llama is None:
            raise ModelUnloadedException(
                f"the model {self.filename} was unloaded; load it again with ez.Model(...)"
            )
        return self._llama

    def _require_decoder(self) -> Decoder:
        self._require()
        return self._decoder

    # --- tokens --------------------------------------------------------------------------------

    def tokenize(self, text: str, add_bos: bool | None = None, special: bool = True) -> list[int]:
        """Text to token ids. ``special=False`` keeps text like ``<|im_end|>`` as plain text,
        which is how user-typed content must be tokenized. ``add_bos=None`` follows the GGUF."""
        self._require()
        if add_bos is None:
            add_bos = self.add_bos
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            utf8.check(text, "the text to tokenize")  # says which byte, in one line
            raise
        capacity = len(raw) + 2
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self._vocab_ptr, raw, len(raw), buffer, capacity, add_bos, special
        )
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self._vocab_ptr, raw, len(raw), buffer, capacity, add_bos, special
            )
        return list(buffer[:count])

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> str:
        """Token ids to text; ``special=True`` also renders control tokens like ``<|im_end|>``."""
        self._require()
        if special:
            data = b"".join(self._piece_special(token) for token in tokens)
        else:
            data = b"".join(self.token_bytes(token) for token in tokens)
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token adds to the text (control tokens add none); cached per id."""
        piece = self._pieces[token]
        if piece is None:
            piece = self._piece(token, special=False)
            self._pieces[token] = piece
        return piece

    def token_text(self, token: int) -> str:
        """A token's text for display, special tokens included."""
        return self._piece_special(token).decode("utf-8", errors="replace")

    def _piece_special(self, token: int) -> bytes:
        return self._piece(token, special=True)

    def _piece(self, token: int, special: bool) -> bytes:
        buffer = ctypes_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab_ptr, token, buffer, 64, 0, special)
        if size < 0:
            buffer = ctypes_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab_ptr, token, buffer, -size, 0, special)
        return bytes(buffer[:size])

    def is_eog(self, token: int) -> bool:
        """End-of-generation tokens (EOS, EOT, ``<|im_end|>``...) as the GGUF marks them."""
        known = self._stop_cache.get(token)
        if known is None:
            known = bool(llama_cpp.llama_vocab_is_eog(self._vocab_ptr, token))
            self._stop_cache[token] = known
        return known

    def get_length(self, text: str) -> int:
        """Length of ``text`` in tokens, including the BOS token the model adds."""
        return len(self.tokenize(text, add_bos=True))

    # --- running -------------------------------------------------------------------------------

    def _prompt_tokens(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        return list(prompt)

    def ingest(self, text: str | list[int]) -> EvalReport:
        """Evaluate ``text`` into the cache so later prompts that start with it begin faster."""
        tokens = self._prompt_tokens(text)
        self._check_fits(tokens, room=0)
        return self._require_decoder().prepare(tokens)

    def _check_fits(self, tokens: list[int], room: int) -> None:
        if len(tokens) + room > self.context_length:
            raise PromptTooLongError(
                f"the prompt is {len(tokens)} tokens but the context holds {self.context_length}"
                f"{f' (with {room} kept free for the reply)' if room else ''}; shorten it or load "
                "the model with a larger context_length"
            )

    def start(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
        candidates: int = 0,
        *,
        allow_shift: bool = False,
    ) -> Generation:
        """Evaluate ``prompt`` and return a ``Generation``: iterate it for ``TokenEvent``s,
        ``cancel()`` it from any thread, read ``result`` at the end. ``candidates=k`` attaches
        the top-k next-token candidates to every event. ``allow_shift``: ``prompt`` is the
        cached conversation with messages left out, so the cache may slide instead of
        re-evaluating (Thread sets it when it truncates)."""
        decoder = self._require_decoder()
        if self._busy:
            raise GenerationError("this model is already generating; one generation at a time")
        sampler = sampler or _default_sampler()
        tokens = self._prompt_tokens(prompt)
        self._check_fits(tokens, room=1)
        stop_ids = {s for s in (stops or []) if isinstance(s, int) and not isinstance(s, bool)}
        stop_strings = [s for s in (stops or []) if isinstance(s, str) and s]
        self._busy = True
        try:
            report = decoder.prepare(tokens, allow_shift=allow_shift)
            chain = build_chain(
                sampler, self._model_ptr, self._vocab_ptr, self.n_vocab, self.context_length
            )
        except BaseException:
            self._busy = False
            raise
        if chain.needs_history:
            for token in tokens[-max(64, sampler.penalty_last_n) :]:
                chain.accept(token)
        ctx = self._llama.ctx  # type: ignore[union-attr]
        chain_sample = chain.sample
        if chain.pure_greedy:
            # argmax picks the first of equal maxima, as llama.cpp's greedy sampler does
            logits, argmax = decoder.logits, np.argmax

            def sample() -> int:
                return int(argmax(logits()))
        else:

            def sample() -> int:
                return chain_sample(ctx, -1)

        is_eog = self.is_eog
        if stop_ids:

            def is_stop(token: int) -> bool:
                return token in stop_ids or is_eog(token)
        else:
            is_stop = is_eog

        def finish() -> None:
            chain.free()
            self._busy = False

        return Generation(
            decoder,
            sample,
            is_stop,
            self.token_bytes,
            self.token_text,
            stop_strings,
            sampler.max_len_tokens,
            candidates,
            report,
            on_finish=finish,
        )

    def grow(
        self,
        prompt: str | list[int],
        n: int = 4,
        sampler: SamplerSettings | None = None,
        stops: list[str | int] | None = None,
    ) -> Growth:
        """Grow ``n`` replies to ``prompt`` at once in one llama.cpp batch (ezchat/engine/
        grow.py): iterate the ``Growth`` for ``(sequence, TokenEvent)``, ``cancel()`` it from
        any thread, read ``results`` and ``token_info`` at the end. Sequence i samples with
        seed + i; greedy sampling gives n equal replies."""
        self._require_decoder()
        return start_grow(
            self, self._prompt_tokens(prompt), n, sampler or _default_sampler(), stops
        )

    def candidates(self, prompt: str | list[int], k: int) -> list[Candidate]:
        """The top ``k`` next tokens after ``prompt``, with probabilities from the softmax over
        the whole vocabulary, most likely first. The evaluated prompt stays in the cache."""
        decoder = self._require_decoder()
        tokens = self._prompt_tokens(prompt)
        self._check_fits(tokens, room=0)
        if self._busy:
            raise GenerationError("this model is generating; ask for candidates afterwards")
        decoder.prepare(tokens)
        return top_candidates(decoder.logits(), k, self.token_text)

    # --- saved state ----------------------------------------------------------------------------

    def save_state(self) -> tuple[list[int], bytes]:
        """The cached tokens and llama.cpp's state for them, to restore with ``load_state``."""
        decoder = self._require_decoder()
        return list(decoder.tokens), decoder.state_bytes()

    def load_state(self, tokens: list[int], state: bytes) -> bool:
        """Restore a cache saved by ``save_state`` on this model file with the same settings."""
        return self._require_decoder().load_state(state, tokens)

    def reset_cache(self) -> None:
        self._require_decoder().clear()

    def context_fingerprint(self) -> str:
        """Identifies what a saved state is valid for: file, size, context and cache settings."""
        path = Path(self.filename)
        stat = path.stat()
        return (
            f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{self.context_length}|"
            f"{self.type_k}|{self.type_v}|{self.rope_freq_base:.3f}|{self.lora_path}"
        )


def ctypes_buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    return (ctypes.c_char * size)()


def _optional_token(token: int) -> int | None:
    return None if token < 0 else int(token)
