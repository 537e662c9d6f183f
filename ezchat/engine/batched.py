"""Several prompts at once through one llama.cpp batch, one sequence id per prompt.

A ``ParallelDecoder`` makes a second llama.cpp context on the weights the ``Model`` already holds
(no second copy of the model in memory) with one KV stream per slot. Every step puts the next
token of every running prompt into one batch, so the weights are read once per step for all of
them. A finished prompt frees its slot for the next one waiting (continuous batching).

Each slot has its own KV stream (``kv_unified = False``) and each prompt is evaluated alone in
the chunks ``Model.complete`` uses, so a sequence's cache holds exactly what it would hold had it
run alone, and greedy outputs equal those of ``Model.complete`` (the tests and
benchmarks/batch.py check this token for token). Batching prompts together would not: llama.cpp
splits such a batch into pieces whose attention runs through other kernels, and the rounding
differences, grown through the layers, change replies. One-token steps of many sequences gave
logits identical to one-sequence steps on the default model; a build whose matrix kernels for
several rows round differently from its one-row kernels could still flip a pick between two
near-equal tokens.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import llama_cpp

from ..chat.samplers import SamplerSettings
from ..errors import GenerationError, ModelUnloadedException
from .results import EvalReport, GenerationResult
from .sampling import SamplerChain, build_chain
from .textstream import TextAssembler

if TYPE_CHECKING:
    from .model import Model

# llama.cpp pads a sequence's KV stream to this many cells anyway.
_CTX_ROUNDING = 256

# A prefix every prompt shares (system prompt, few-shot examples) is evaluated once and copied
# to every slot when it is at least this long; a shorter one costs less to evaluate again.
MIN_SHARED_PREFIX = 16


def shared_prefix(requests: Sequence[Request]) -> list[int]:
    """The tokens every request starts with, leaving each at least its last token to evaluate
    (its logits give the first new token); empty when shorter than ``MIN_SHARED_PREFIX``."""
    if len(requests) < 2:
        return []
    first = requests[0].tokens
    length = min(len(request.tokens) for request in requests) - 1
    for request in requests[1:]:
        tokens = request.tokens
        common = 0
        while common < length and tokens[common] == first[common]:
            common += 1
        length = common
    return first[:length] if length >= MIN_SHARED_PREFIX else []


@dataclass(slots=True)
class Request:
    """One prompt to run: its tokens, how to sample, where to stop, and an optional GBNF
    grammar (root rule ``root``) that every sampled token must satisfy."""

    tokens: list[int]
    sampler: SamplerSettings
    stops: list[str | int] = field(default_factory=list)
    grammar: str | None = None

    @property
    def max_new_tokens(self) -> int:
        """How many tokens this request may generate; 0 means until the context is full."""
        return max(0, self.sampler.max_len_tokens)


def make_chain(model: Model, request: Request) -> SamplerChain:
    """The sampler chain ``Model.start`` would build, behind a grammar sampler when the request
    has a grammar (the grammar must see every candidate before the chain picks one)."""
    sampler = request.sampler
    inner = build_chain(
        sampler, model.native_model, model.native_vocab, model.n_vocab, model.context_length
    )
    if inner.needs_history:  # as Model.start does, so penalties see the same tokens
        for token in request.tokens[-max(64, sampler.penalty_last_n) :]:
            inner.accept(token)
    if request.grammar is None:
        return inner
    grammar = llama_cpp.llama_sampler_init_grammar(
        model.native_vocab, request.grammar.encode("utf-8"), b"root"
    )
    if not grammar:
        inner.free()
        raise GenerationError("llama.cpp rejected the output grammar; check the output type")
    outer = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(outer, grammar)
    # The outer chain owns the inner one from here and frees it with itself.
    llama_cpp.llama_sampler_chain_add(outer, inner.hand_over())
    return SamplerChain(outer, needs_history=False)


def context_size_for(model: Model, requests: Sequence[Request]) -> int:
    """KV cells one slot needs to run the longest of ``requests`` to its end, at most the
    model's context length (the limit the same prompt has in ``Model.complete``)."""
    need = 1
    for request in requests:
        new = request.max_new_tokens or model.context_length
        need = max(need, len(request.tokens) + new)
    need = -(-need // _CTX_ROUNDING) * _CTX_ROUNDING
    return min(need, model.context_length)


class _Slot:
    """One running request in one sequence of the batch."""

    __slots__ = (
        "seq",
        "index",
        "request",
        "chain",
        "assembler",
        "result",
        "limit",
        "stop_ids",
        "logit_row",
        "started",
        "decoding_since",
    )

    def __init__(self, seq: int, index: int, request: Request, chain: SamplerChain) -> None:
        self.seq = seq
        self.index = index
        self.request = request
        self.chain = chain
        stops = request.stops
        self.assembler = TextAssembler([s for s in stops if isinstance(s, str) and s])
        self.stop_ids = {s for s in stops if isinstance(s, int) and not isinstance(s, bool)}
        self.result = GenerationResult(prompt=EvalReport(prompt_tokens=len(request.tokens)))
        self.limit = request.max_new_tokens
        self.logit_row = 0  # row of this slot's logits in the last decoded batch
        self.started = time.perf_counter()
        self.decoding_since = 0.0

    @property
    def pos(self) -> int:
        """How many tokens this slot's sequence holds once its last sampled token is in."""
        return len(self.request.tokens) + len(self.result.tokens)


class ParallelDecoder:
    """A second llama.cpp context on a Model's weights with ``n_parallel`` sequences of
    ``n_ctx_seq`` cells each, decoding with ``n_threads`` (default: the model's decode threads).
    Use it as a context manager: it frees its memory on exit."""

    def __init__(
        self, model: Model, n_parallel: int, n_ctx_seq: int, n_threads: int | None = None
    ) -> None:
        model.llama  # raises ModelUnloadedException when the model is gone  # noqa: B018
        self.model = model
        self.n_parallel = max(1, min(n_parallel, llama_cpp.llama_max_parallel_sequences()))
        self.n_ctx_seq = n_ctx_seq
        params = llama_cpp.llama_context_params.from_buffer_copy(model.llama.context_params)
        params.n_ctx = n_ctx_seq * self.n_parallel
        params.n_seq_max = self.n_parallel
        params.kv_unified = False  # one KV stream per sequence: results as if run alone
        # a prompt chunk of Model.complete, or one token of every sequence
        self.n_batch = max(model.n_batch, self.n_parallel)
        params.n_batch = params.n_ubatch = self.n_batch
        # Steps of several sequences are batches, which llama-cpp-python would give its batch
        # threads (every logical CPU). They get the model's threads instead (llama.cpp's rule,
        # one per physical core, unless the user chose a count): ggml's threads spin while
        # they wait for each other, and on a machine with anything else running, one more
        # thread than there are free cores makes every step many times slower (measured on
        # 2 cores: 100 tok/s with 1 thread, 23 with 2, under load). Pass n_threads for more.
        threads = n_threads or int(params.n_threads)
        params.n_threads = params.n_threads_batch = threads
        params.embeddings = False
        params.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(model.native_model, params)
        if not self._ctx:
            raise GenerationError(
                f"llama.cpp could not make a context for {self.n_parallel} parallel prompts of "
                f"{n_ctx_seq} tokens; use fewer parallel prompts or a shorter max_len_tokens"
            )
        adapter = getattr(model.llama, "_lora_adapter", None)
        if adapter is not None:  # the batched outputs must see the same LoRA as the model
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(model.llama.lora_scale)
            llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._prefix: list[int] = []  # what every prompt of the current run starts with

    def close(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> ParallelDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # --- running ----------------------------------------------------------------------------

    def run(
        self,
        requests: Sequence[Request],
        on_result: Callable[[int, GenerationResult], None] | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> list[GenerationResult]:
        """Run every request; results come back in request order.

        ``on_result(index, result)`` is called as each one finishes; ``on_step(prompt_tokens,
        new_tokens)`` after every decode with what it evaluated. Each prompt must fit in
        ``n_ctx_seq`` with room for one token (the caller checks and skips the others).
        """
        for request in requests:
            if len(request.tokens) >= self.n_ctx_seq or not request.tokens:
                raise GenerationError(
                    f"a prompt of {len(request.tokens)} tokens does not fit a sequence of "
                    f"{self.n_ctx_seq}"
                )
        if self._ctx is None or not self.model.is_loaded:
            raise ModelUnloadedException("the model was unloaded; load it again")
        results: list[GenerationResult | None] = [None] * len(requests)
        self._prefix = shared_prefix(requests)
        if self._prefix:
            self._share_prefix()
            if on_step is not None:
                on_step(len(self._prefix), 0)
        waiting = deque(enumerate(requests))
        slots: list[_Slot | None] = [None] * self.n_parallel

        def advance(slot: _Slot) -> None:
            if self._advance(slot):
                slots[slot.seq] = None
                slot.chain.free()
                results[slot.index] = slot.result
                if on_result is not None:
                    on_result(slot.index, slot.result)

        try:
            while waiting or any(slots):
                for seq in range(self.n_parallel):
                    if slots[seq] is None and waiting:
                        index, request = waiting.popleft()
                        slot = _Slot(seq, index, request, make_chain(self.model, request))
                        slots[seq] = slot
                        self._prefill(slot)
                        if on_step is not None:
                            on_step(slot.result.prompt.evaluated, 0)
                        advance(slot)
                generating = [slot for slot in slots if slot is not None]
                if generating:
                    self._step(generating)
                    if on_step is not None:
                        on_step(0, len(generating))
                    for slot in generating:
                        advance(slot)
        finally:
            for slot in slots:
                if slot is not None:
                    slot.chain.free()
        return [result for result in results if result is not None]

    def _share_prefix(self) -> None:
        """Evaluate the shared prefix once, in sequence 0, and copy it into every other
        slot's KV stream (llama.cpp copies the buffers at the next decode, before that
        decode's own tokens go in); each prompt then evaluates only what follows it."""
        llama_cpp.llama_memory_seq_rm(self._memory, 0, -1, -1)
        self._evaluate(self._prefix, 0, 0, logits_for_last=False)
        for seq in range(1, self.n_parallel):
            llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._memory, 0, seq, -1, -1)

    def _prefill(self, slot: _Slot) -> None:
        """Evaluate one prompt alone (after the shared prefix its slot already holds), in the
        chunks ``Model.complete`` uses.

        Prompts are not batched together: llama.cpp would split such a batch into pieces whose
        attention runs through other kernels than a whole prompt's, and the small rounding
        differences, grown through the layers, change the replies. A prompt evaluated after a
        cached prefix is what ``Model.complete`` does with a prefix in its own cache."""
        kept = len(self._prefix)
        llama_cpp.llama_memory_seq_rm(self._memory, slot.seq, kept, -1)
        tokens = slot.request.tokens
        slot.logit_row = self._evaluate(tokens[kept:], kept, slot.seq, logits_for_last=True)
        now = time.perf_counter()
        report = slot.result.prompt
        report.reused = kept
        report.evaluated = len(tokens) - kept
        report.seconds = now - slot.started
        slot.decoding_since = now

    def _evaluate(self, tokens: list[int], start: int, seq: int, logits_for_last: bool) -> int:
        """Evaluate ``tokens`` at positions from ``start`` in sequence ``seq``, in chunks of the
        model's batch size; the batch row of the last token."""
        chunk = self.model.n_batch
        n = 0
        for offset in range(0, len(tokens), chunk):
            part = tokens[offset : offset + chunk]
            n = 0
            for i, token in enumerate(part):
                last = logits_for_last and offset + i == len(tokens) - 1
                n = self._put(n, token, start + offset + i, seq, last)
            self._decode(n)
        return n - 1

    def _step(self, slots: list[_Slot]) -> None:
        """Evaluate the last sampled token of every running slot in one batch."""
        n = 0
        for slot in slots:
            slot.logit_row = n
            n = self._put(n, slot.result.tokens[-1], slot.pos - 1, slot.seq, True)
        self._decode(n)

    def _put(self, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        batch = self._batch
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _decode(self, n: int) -> None:
        self._batch.n_tokens = n
        status = llama_cpp.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise GenerationError(f"llama_decode failed with status {status} in a batched run")

    def _advance(self, slot: _Slot) -> bool:
        """Sample the slot's next token from its logits row; True when the slot is done.

        The checks run in the order of ``Generation``, so each prompt stops exactly where
        ``Model.complete`` would stop it."""
        model = self.model
        result = slot.result
        token = slot.chain.sample(self._ctx, slot.logit_row)
        done = ""
        if token in slot.stop_ids or model.is_eog(token):
            done = "stop_token"
        else:
            result.tokens.append(token)
            slot.assembler.push(model.token_bytes(token))
            if slot.assembler.stopped_by is not None:
                done, result.stop_string = "stop_string", slot.assembler.stopped_by
            elif slot.limit and len(result.tokens) >= slot.limit:
                done = "length"
            elif slot.pos >= self.n_ctx_seq:
                done = "context_full"
        if not done:
            return False
        slot.assembler.finish()
        result.text = slot.assembler.text
        result.stop_reason = done
        result.decode_seconds = time.perf_counter() - slot.decoding_since
        return True


def run_batched(
    model: Model,
    requests: Sequence[Request],
    parallel: int = 16,
    on_result: Callable[[int, GenerationResult], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    n_threads: int | None = None,
) -> list[GenerationResult]:
    """Run ``requests`` ``parallel`` at a time in one batch; results in request order.
    ``n_threads`` defaults to the model's decode threads; an idle machine may do better with
    all its cores."""
    if not requests:
        return []
    n_parallel = max(1, min(parallel, len(requests)))
    size = context_size_for(model, requests)
    with ParallelDecoder(model, n_parallel, size, n_threads) as decoder:
        return decoder.run(requests, on_result, on_step)
