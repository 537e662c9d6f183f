"""``Model``: a GGUF file loaded into llama.cpp, with the facts about it and ways to run it."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import llama_cpp

from ..errors import ModelLoadError, ModelUnloadedException
from .calls import GenerationCalls
from .context_size import (
    DEFAULT_MAX_CONTEXT,
    KV_CACHE_TYPES,
    ContextSizeChecks,
    kv_cache_type_name,
    kv_type,
    scaled_rope_freq_base,
)
from .cpu import ThreadCount, default_thread_count
from .decoder import Decoder
from .gguf import GGUFInfo, read_gguf, special_tokens
from .load_progress import reporting_progress
from .memory import kv_cache_size
from .results import EvalReport, GenerationResult, ProgressReport, TokenEvent
from .runs import RunCalls
from .tokens import TokenCalls

__all__ = [
    "DEFAULT_MAX_CONTEXT",
    "KV_CACHE_TYPES",
    "GenerationResult",
    "kv_cache_type_name",
    "scaled_rope_freq_base",
    "Model",
    "ModelLoadError",
    "ModelUnloadedException",
    "TokenEvent",
]


class _Llama(llama_cpp.Llama):
    """llama-cpp-python's ``Llama`` without the GGUF's chat templates in its metadata.

    Its constructor compiles every ``tokenizer.chat_template*`` it finds in the metadata into
    a chat handler, with no bound: Jinja folds constant filters while it compiles, so a
    40-character template (``'a b'|center(3000000)|wordwrap(2)``) hangs the load for hours
    and ``'x'|center(1500000000)`` allocates gigabytes, even when another format is chosen.
    ezchat never uses those handlers (it renders templates itself, bounded: ezchat/chat), so
    the templates are left out of the metadata the constructor reads.
    """

    @property
    def metadata(self) -> dict[str, str]:
        return self._metadata_without_templates

    @metadata.setter
    def metadata(self, value: dict[str, str]) -> None:
        self._metadata_without_templates = {
            key: text
            for key, text in value.items()
            if not key.startswith("tokenizer.chat_template")
        }


def _gpu_build() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


def llama_system_info() -> str:
    """llama.cpp's own line of the features the library was built with (AVX2 = 1 | ...)."""
    return " ".join(llama_cpp.llama_print_system_info().decode("utf-8", "replace").split())


class Model(ContextSizeChecks, TokenCalls, RunCalls, GenerationCalls):
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
        self._file_identity = _identity(self.filename)

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
        self.type_k = kv_type(type_k, "type_k")
        self.type_v = kv_type(type_v, "type_v")
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
                self._llama = _Llama(
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
        self._longest_piece: int | None = None
        self._busy = False

    # --- facts ---------------------------------------------------------------------------------

    @property
    def llama(self) -> llama_cpp.Llama:
        return self._require()

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

    def _check_file_intact(self) -> None:
        """Refuse to run on a model file cut short in place since the load: llama.cpp reads the
        weights from the file's mapping, and a read past its new end ends the process with
        SIGBUS. A file replaced (a new inode) or deleted leaves the mapping on the old one."""
        now = _identity(self.filename)
        if now is None or self._file_identity is None:
            return
        (inode, size), (loaded_inode, loaded_size) = now, self._file_identity
        if inode == loaded_inode and size < loaded_size:
            raise ModelLoadError(
                f"{self.filename}: the model file was cut short while loaded ({loaded_size:,} "
                f"bytes then, {size:,} now), so ezchat stops before llama.cpp reads it: restore "
                "the file and load it again"
            )

    def _require_decoder(self) -> Decoder:
        self._require()
        return self._decoder

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


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size


def _optional_token(token: int) -> int | None:
    return None if token < 0 else int(token)
