"""The KV cache of one llama.cpp context, and the tokens it holds.

``Decoder`` is the only place that calls ``llama_decode``. It remembers which tokens sit in
sequence 0 of the cache, so each request evaluates only what the cache lacks: a shared prefix
is reused, and when a chat drops old messages to fit, the cached tail is shifted into place
instead of being evaluated again (where the model's memory supports shifting).
"""

from __future__ import annotations

import ctypes
import time

import llama_cpp
import numpy as np

from ..errors import GenerationError
from .results import EvalReport

SEQ = 0  # one conversation per context: everything lives in sequence 0
# A shifted tail is the rest of a conversation (at least the newest turn): a shorter match is
# more likely chance than a dropped message.
MIN_SHIFTED_TAIL = 16


class Decoder:
    def __init__(self, ctx: llama_cpp.llama_context_p, n_ctx: int, n_batch: int, n_vocab: int):
        self._ctx = ctx
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.n_vocab = n_vocab
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.can_shift = bool(llama_cpp.llama_memory_can_shift(self._memory))
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.tokens: list[int] = []  # exactly what sequence 0 of the cache holds, in order
        self.last = EvalReport()
        # bound once: these run for every generated token
        self._decode = llama_cpp.llama_decode
        self._logits_ith = llama_cpp.llama_get_logits_ith

    def close(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    def __del__(self) -> None:
        self.close()

    # --- evaluation -------------------------------------------------------------------------

    def prepare(self, prompt: list[int], allow_shift: bool = False) -> EvalReport:
        """Make the cache hold ``prompt`` with logits for its last token, evaluating the least.

        ``allow_shift``: the caller knows ``prompt`` is the cached conversation with messages
        left out (a Thread that truncated), so a cached tail may be slid into place. Without
        that knowledge a tail that merely looks the same would carry memory computed for a
        different context, so plain prompts never shift."""
        if not prompt:
            raise GenerationError("empty prompt: there is nothing to evaluate")
        if len(prompt) > self.n_ctx:
            raise GenerationError(
                f"prompt of {len(prompt)} tokens exceeds the context of {self.n_ctx}"
            )
        started = time.perf_counter()
        report = EvalReport(prompt_tokens=len(prompt))
        common = _common_prefix(self.tokens, prompt)
        if common == len(prompt):
            # Everything is cached, but the logits of the last token may be stale (a later token
            # was evaluated and removed); evaluate it again to get fresh logits.
            common -= 1
        if allow_shift and common < len(self.tokens) and self.can_shift:
            report.shifted = self._shift_to_match(common, prompt)
            common = _common_prefix(self.tokens, prompt)
            if common == len(prompt):
                common -= 1
        self.truncate(common)
        report.reused = common
        report.evaluated = len(prompt) - common
        self._evaluate(prompt[common:])
        report.seconds = time.perf_counter() - started
        self.last = report
        return report

    def truncate(self, n_keep: int) -> None:
        """Forget every cached token from position ``n_keep`` on."""
        if n_keep < len(self.tokens):
            if not llama_cpp.llama_memory_seq_rm(self._memory, SEQ, n_keep, -1):
                # recurrent models cannot drop part of a sequence: start over
                llama_cpp.llama_memory_seq_rm(self._memory, SEQ, -1, -1)
                n_keep = 0
            del self.tokens[n_keep:]

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self._memory, True)
        self.tokens.clear()

    def _evaluate(self, tokens: list[int]) -> None:
        batch = self._batch
        pos = len(self.tokens)
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            last_chunk = start + self.n_batch >= len(tokens)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = pos + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = SEQ
                batch.logits[i] = 0
            if last_chunk:
                batch.logits[len(chunk) - 1] = 1
            batch.n_tokens = len(chunk)
            self._check(self._decode(self._ctx, batch))
            self.tokens.extend(chunk)
            pos += len(chunk)

    def step(self, token: int) -> None:
        """Evaluate one generated token (the hot path of generation)."""
        batch = self._batch
        batch.token[0] = token
        batch.pos[0] = len(self.tokens)
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = SEQ
        batch.logits[0] = 1
        batch.n_tokens = 1
        self._check(self._decode(self._ctx, batch))
        self.tokens.append(token)

    def _check(self, status: int) -> None:
        if status == 0:
            return
        if status == 1:
            raise GenerationError(
                "the context is full (no KV cache slot); start a new chat or load a larger context"
            )
        raise GenerationError(f"llama_decode failed with status {status}")

    # --- reading results --------------------------------------------------------------------

    def logits(self) -> np.ndarray:
        """The last evaluated token's logits, a view into llama.cpp's buffer (copy to keep)."""
        pointer = self._logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)
        )

    # --- context shift ----------------------------------------------------------------------

    def _shift_to_match(self, common: int, prompt: list[int]) -> int:
        """If ``prompt`` equals the cache with one span removed after ``common``, remove that
        span from the cache and slide the tail left, so the tail need not be evaluated again.
        Returns how many cached tokens were moved (0 when no such span exists)."""
        cached = self.tokens
        rest = prompt[common:]
        if not rest:
            return 0
        first = rest[0]
        at = common
        while True:
            try:
                at = cached.index(first, at + 1)
            except ValueError:
                return 0
            tail = cached[at:]
            if len(tail) < MIN_SHIFTED_TAIL:
                return 0  # too short to be the rest of a conversation: evaluate it instead
            if prompt[common : common + len(tail)] == tail:
                break
        dropped = at - common
        if not llama_cpp.llama_memory_seq_rm(self._memory, SEQ, common, at):
            return 0
        llama_cpp.llama_memory_seq_add(self._memory, SEQ, at, -1, -dropped)
        del cached[common:at]
        return len(tail)

    # --- saved state ------------------------------------------------------------------------

    def state_bytes(self) -> bytes:
        size = llama_cpp.llama_state_seq_get_size(self._ctx, SEQ)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, SEQ)
        return bytes(buffer[:written])

    def load_state(self, data: bytes, tokens: list[int]) -> bool:
        """Restore a saved sequence; False (cache cleared) when llama.cpp rejects it."""
        self.clear()
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(self._ctx, buffer, len(data), SEQ) == 0:
            self.clear()
            return False
        self.tokens = list(tokens)
        return True


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # binary search on slice equality: each compare runs at C speed
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
