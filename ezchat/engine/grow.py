"""Growing N alternative continuations of one prompt at once, in one llama.cpp batch.

The prompt is evaluated once, in the Model's own context, where the cache usually holds most
of it already (a chat's earlier turns): only what it lacks is evaluated, exactly as
``Model.start`` would, and the first token of every sequence is sampled from those logits.
The prompt's KV cells are then copied into sequence 0 of a ``ParallelDecoder`` (one KV
stream per sequence, on the same weights) and from there into the other N - 1 sequences, so
every step decodes the next token of every running sequence in one batch.

Copying the cache costs far less than evaluating the prompt again in the batch's context
(benchmarks/grow.py measures both), and it leaves the Model's cache holding the prompt, which
the reply picked next continues from.

Each sequence has its own sampler chain, seeded ``seed + i``, so the N replies differ at a
temperature above zero; greedy sampling gives N equal replies. A sequence's cache holds what
it would hold had it run alone in ``Model.start``, and one-token steps of several sequences
give the same logits as one-sequence steps on the default model (tests/test_grow.py checks
both token for token).
"""

from __future__ import annotations

import ctypes
import dataclasses
import struct
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import llama_cpp
import numpy as np

from .. import gates
from ..chat.samplers import SamplerSettings
from ..chat.tree import TokenInfo
from ..errors import GenerationError
from .batched import ParallelDecoder, Request, context_size_for, make_chain
from .generation import top_candidates
from .results import EvalReport, GenerationResult, TokenEvent
from .sampling import SamplerChain
from .textstream import TextAssembler

if TYPE_CHECKING:
    from .model import Model

_STREAMS = struct.Struct("<I")  # llama.cpp's stream count in a saved sequence

# How many alternatives each generated token keeps (the loom's inspection shows the top 10).
TOP_K = 10


def grow_sampler(sampler: SamplerSettings, index: int) -> SamplerSettings:
    """The sampler of the ``index``-th grown sequence (0 for the first): seed + index, so the
    sequences differ yet each is reproducible alone. A random seed (-1) stays random: each
    chain then draws its own."""
    if sampler.seed < 0 or index == 0:
        return sampler
    return dataclasses.replace(sampler, seed=(sampler.seed + index) % 2**32)


def token_info(logits: np.ndarray, token: int, k: int = TOP_K) -> TokenInfo:
    """How the model weighed ``token``: its probability from the softmax over the whole
    vocabulary, and the ``k`` most likely tokens at its position."""
    top = top_candidates(logits, k, _no_text)
    probability = next((c.probability for c in top if c.id == token), None)
    if probability is None:  # sampled from outside the top k: its own share of the softmax
        shifted = np.exp(logits - logits.max())
        probability = shifted[token] / shifted.sum()
    pairs = tuple((c.id, float(c.probability)) for c in top)
    return TokenInfo(token, float(probability), pairs)


def _no_text(token: int) -> str:
    return ""  # TokenInfo keeps ids; the texts are looked up when shown


class _Sequence:
    """One of the N sequences: its chain, its text so far, its result and token infos."""

    __slots__ = ("index", "chain", "assembler", "result", "token_info", "row", "done", "since")

    def __init__(self, index: int, chain: SamplerChain, stops: list[str], prompt: EvalReport):
        self.index = index
        self.chain = chain
        self.assembler = TextAssembler(stops)
        self.result = GenerationResult(prompt=prompt)
        self.token_info: list[TokenInfo] = []
        self.result.token_info = self.token_info  # aligned with result.tokens
        self.row = 0  # the row of its logits in the batch's last decode
        self.done = False
        self.since = time.perf_counter()  # when its decoding began


class _GrowDecoder(ParallelDecoder):
    """A ParallelDecoder that takes a prompt's cache from the Model's context, or evaluates
    it itself, and steps all its sequences together."""

    def take_cache(self, model: Model) -> bool:
        """Copy the KV cells of the Model's context (which holds exactly the prompt) into every
        sequence; False when that cannot be done (the caller then evaluates the prompt here).

        llama.cpp saves a sequence as its context's streams, each a cell count and cells, and
        restores it only into a context with as many streams. The Model's context has one and
        this one a stream per sequence, so the saved bytes are restored with the stream count
        of this context and the other streams empty. That layout belongs to llama.cpp's plain
        KV cache, so models with another memory (sliding-window, recurrent, hybrid) and any
        layout not as expected take the other way; a restore llama.cpp rejects does too."""
        native = model.native_model
        if (
            llama_cpp.llama_model_n_swa(native) > 0
            or llama_cpp.llama_model_is_recurrent(native)
            or llama_cpp.llama_model_is_hybrid(native)
        ):
            return False
        source = model.llama.ctx
        size = llama_cpp.llama_state_seq_get_size(source, 0)
        saved = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(source, saved, size, 0)
        # magic (4 bytes), sequence id (4), stream count (4), then the one stream's cells
        if written < 16 or _STREAMS.unpack_from(saved, 8)[0] != 1:
            return False
        streams = self.n_parallel
        # the saved bytes, then an empty cell count for each further stream
        size = written + 4 * (streams - 1)
        buffer = (ctypes.c_uint8 * size)()
        ctypes.memmove(buffer, saved, written)
        _STREAMS.pack_into(buffer, 8, streams)
        llama_cpp.llama_memory_clear(self._memory, True)
        for seq in range(streams):
            if not llama_cpp.llama_state_seq_set_data(self._ctx, buffer, size, seq):
                llama_cpp.llama_memory_clear(self._memory, True)
                return False
        return True

    def evaluate_prompt(self, prompt: list[int]) -> int:
        """Evaluate the prompt in sequence 0, in ``Model.start``'s chunks, with logits for its
        last token, and copy its cells into every other sequence; the row of those logits."""
        llama_cpp.llama_memory_clear(self._memory, True)
        row = self._evaluate(prompt, 0, 0, logits_for_last=True)
        self._copy_to_all()
        return row

    def _copy_to_all(self) -> None:
        # llama.cpp copies the buffers at the next decode, before that decode's own tokens
        for seq in range(1, self.n_parallel):
            llama_cpp.llama_memory_seq_cp(self._memory, 0, seq, -1, -1)

    def step(self, running: list[_Sequence], prompt_length: int) -> None:
        """Evaluate the last token of every running sequence in one batch."""
        n = 0
        for sequence in running:
            sequence.row = n
            tokens = sequence.result.tokens
            n = self._put(n, tokens[-1], prompt_length + len(tokens) - 1, sequence.index, True)
        self._decode(n)

    def logits(self, row: int) -> np.ndarray:
        pointer = llama_cpp.llama_get_logits_ith(self._ctx, row)
        return np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.model.n_vocab,)
        )

    @property
    def native_context(self) -> llama_cpp.llama_context_p:
        return self._ctx


class Growth:
    """N replies to one prompt growing together. Iterate it for ``(sequence, TokenEvent)``;
    ``cancel()`` from any thread ends all N at the next token, each keeping its partial text
    and tokens; once iteration ends ``results[i]`` and ``token_info[i]`` are complete.

    The Model is busy (no other generation starts) from ``Model.grow`` until iteration ends.
    """

    def __init__(
        self,
        model: Model,
        prompt: list[int],
        n: int,
        sampler: SamplerSettings,
        stops: list[str | int],
        reuse_cache: bool = True,
        n_threads: int | None = None,
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.n = n
        self.sampler = sampler
        self._stop_ids = {s for s in stops if isinstance(s, int) and not isinstance(s, bool)}
        self._stop_strings = [s for s in stops if isinstance(s, str) and s]
        self._reuse_cache = reuse_cache
        self._n_threads = n_threads
        self._cancel = threading.Event()
        self._sequences: list[_Sequence] = []
        self.prompt_report = EvalReport(prompt_tokens=len(prompt))
        # how the prompt reached the N sequences: "copied" from the Model's cache or
        # "evaluated" in the batch's own context
        self.prompt_source = ""
        self.seconds = 0.0

    @property
    def results(self) -> list[GenerationResult]:
        return [sequence.result for sequence in self._sequences]

    @property
    def token_info(self) -> list[list[TokenInfo]]:
        return [sequence.token_info for sequence in self._sequences]

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> list[GenerationResult]:
        for _ in self:
            pass
        return self.results

    def __iter__(self) -> Iterator[tuple[int, TokenEvent]]:
        model = self.model
        started = time.perf_counter()
        decoder: _GrowDecoder | None = None
        try:
            request = Request(self.prompt, self.sampler)
            size = context_size_for(model, [request])
            decoder = _GrowDecoder(model, self.n, size, self._n_threads)
            self._sequences = [
                _Sequence(
                    i,
                    make_chain(model, Request(self.prompt, grow_sampler(self.sampler, i))),
                    self._stop_strings,
                    self.prompt_report,
                )
                for i in range(decoder.n_parallel)
            ]
            first_logits = self._load_prompt(decoder)
            yield from self._generate(decoder, first_logits)
        finally:
            for sequence in self._sequences:
                self._finish(sequence, sequence.result.stop_reason or "cancelled")
                sequence.chain.free()
            if decoder is not None:
                decoder.close()
            self.seconds = time.perf_counter() - started
            model._busy = False

    def _load_prompt(self, decoder: _GrowDecoder) -> np.ndarray | None:
        """Put the prompt into every sequence; the logits its first tokens are sampled from
        (the Model's, when its cache was copied; None: the batch's, at each sequence's row)."""
        model = self.model
        report = self.prompt_report
        started = time.perf_counter()
        if self._reuse_cache:
            decoder_report = model._require_decoder().prepare(self.prompt)
            if decoder.take_cache(model):
                report.reused, report.evaluated = decoder_report.reused, decoder_report.evaluated
                report.seconds = time.perf_counter() - started
                self.prompt_source = "copied"
                return model._require_decoder().logits()
        row = decoder.evaluate_prompt(self.prompt)
        report.reused, report.evaluated = 0, len(self.prompt)
        report.seconds = time.perf_counter() - started
        self.prompt_source = "evaluated"
        for sequence in self._sequences:
            sequence.row = row
        return None

    def _generate(
        self, decoder: _GrowDecoder, first_logits: np.ndarray | None
    ) -> Iterator[tuple[int, TokenEvent]]:
        model = self.model
        cancelled = self._cancel.is_set
        prompt_length = len(self.prompt)
        limit = self.sampler.max_len_tokens if self.sampler.max_len_tokens > 0 else 0
        room = model.context_length
        main_ctx = model.llama.ctx
        running = list(self._sequences)
        now = time.perf_counter()
        for sequence in running:
            sequence.since = now
        # the first tokens come from the Model's context when its cache was copied
        from_model = first_logits is not None
        gate, steps = gates.installed(), 0
        while running:
            if gate is not None:
                gate("grow", steps, "")
                steps += 1
            for sequence in running:
                if cancelled():
                    return  # every sequence not done ends as "cancelled", keeping its text
                if from_model:
                    event = self._next_token(sequence, main_ctx, -1, first_logits, limit, room)
                else:
                    logits = decoder.logits(sequence.row)
                    ctx = decoder.native_context
                    event = self._next_token(sequence, ctx, sequence.row, logits, limit, room)
                if event is not None:
                    yield sequence.index, event
            from_model = False
            running = [sequence for sequence in running if not sequence.done]
            if running:
                decoder.step(running, prompt_length)

    def _next_token(
        self,
        sequence: _Sequence,
        ctx: llama_cpp.llama_context_p,
        row: int,
        logits: np.ndarray,
        limit: int,
        room: int,
    ) -> TokenEvent | None:
        """Sample one sequence's next token from ``logits`` (row ``row`` of ``ctx``) and
        check its stops in ``Generation``'s order; the event to yield (None when the sequence
        ended without a token)."""
        result = sequence.result
        tokens = result.tokens
        if limit and len(tokens) >= limit:
            self._finish(sequence, "length")
            return None
        if len(self.prompt) + len(tokens) >= room:
            self._finish(sequence, "context_full")
            return None
        if sequence.chain.pure_greedy:
            token = int(np.argmax(logits))  # as Model.start does: the first of equal maxima
        else:
            token = sequence.chain.sample(ctx, row)
        model = self.model
        if token in self._stop_ids or model.is_eog(token):
            self._finish(sequence, "stop_token")
            return None
        tokens.append(token)
        sequence.token_info.append(token_info(logits, token))
        assembler = sequence.assembler
        text = assembler.push(model.token_bytes(token))
        if assembler.stopped_by is not None:
            result.stop_string = assembler.stopped_by
            self._finish(sequence, "stop_string")
        return TokenEvent(token, text, None)

    def _finish(self, sequence: _Sequence, reason: str) -> None:
        if sequence.done:
            return
        sequence.done = True
        result = sequence.result
        result.stop_reason = reason
        sequence.assembler.finish()
        result.text = sequence.assembler.text
        result.decode_seconds = time.perf_counter() - sequence.since


def start_grow(
    model: Model,
    prompt: list[int],
    n: int,
    sampler: SamplerSettings,
    stops: list[str | int] | None = None,
    *,
    reuse_cache: bool = True,
    n_threads: int | None = None,
) -> Growth:
    """Begin growing ``n`` replies to ``prompt``; the Model is busy until the Growth ends."""
    if n < 1:
        raise GenerationError(f"grow needs at least 1 reply, not {n}; ask for 1 or more")
    if model._busy:
        raise GenerationError("this model is already generating; one generation at a time")
    model._check_fits(prompt, room=1)
    model._busy = True
    return Growth(model, prompt, n, sampler, stops or [], reuse_cache, n_threads)
