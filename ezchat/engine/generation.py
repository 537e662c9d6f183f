"""One generation: the per-token loop and the events it yields.

The loop is the hot path of ezchat. Per token it does one sample, one stop check, one cached
byte lookup, one incremental decode and one ``llama_decode``; everything else costs only when
asked for: how the model weighed each token (``token_info``, one softmax per token that the
candidates reuse), candidates, stats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from .. import gates
from .decoder import Decoder
from .results import Candidate, EvalReport, GenerationResult, TokenEvent
from .textstream import TextAssembler
from .weighing import TOKEN_INFO_K, TokenWeigher, Weighing


def top_candidates(logits: np.ndarray, k: int, piece: Callable[[int], str]) -> list[Candidate]:
    """The k most likely next tokens, with probabilities from the softmax over the whole
    vocabulary (so they sum to at most 1), most likely first."""
    weighing = TokenWeigher(logits.shape[0], k).weigh(logits)
    return candidates_of(weighing, k, piece)


def candidates_of(weighing: Weighing, k: int, piece: Callable[[int], str]) -> list[Candidate]:
    ids, probs = weighing.top_ids[:k].tolist(), weighing.top_probs[:k].tolist()
    return [Candidate(piece(token), p, token) for token, p in zip(ids, probs, strict=True)]


class Generation:
    """An iterator of ``TokenEvent``; ``result`` is complete once iteration ends.

    ``cancel()`` may be called from any thread: the loop checks it before every token, and
    the partial reply stays in ``result``. With ``token_info``, ``result.token_info`` gets
    one ``TokenInfo`` per generated token (aligned with ``result.tokens``).
    """

    def __init__(
        self,
        decoder: Decoder,
        sample: Callable[[], int],
        is_stop_token: Callable[[int], bool],
        piece_bytes: Callable[[int], bytes],
        piece_text: Callable[[int], str],
        stops: list[str],
        max_tokens: int,
        candidates_k: int,
        prompt_report: EvalReport,
        on_finish: Callable[[], None] | None = None,
        token_info: bool = False,
    ) -> None:
        self._decoder = decoder
        self._sample = sample
        self._is_stop_token = is_stop_token
        self._piece_bytes = piece_bytes
        self._piece_text = piece_text
        self._assembler = TextAssembler(stops)
        self._max_tokens = max_tokens
        self._candidates_k = candidates_k
        self._on_finish = on_finish
        self._cancel = threading.Event()
        self.result = GenerationResult(prompt=prompt_report)
        self._weigher: TokenWeigher | None = None
        if token_info:
            self.result.token_info = []
            self._weigher = TokenWeigher(decoder.n_vocab, max(TOKEN_INFO_K, candidates_k))
        self._candidates_on_request = False
        self._candidates_requested = True  # the first token carries them either way

    def cancel(self) -> None:
        self._cancel.set()

    def candidates_only_on_request(self) -> bool:
        """From now on attach candidates only to the first token after each
        ``request_candidates()``. A display refreshed a few times a second needs no more, and
        top-k over the whole vocabulary costs about 0.1 ms a token: a tenth of a token on a
        fast GPU. Returns True: this backend honours it."""
        self._candidates_on_request = True
        return True

    def request_candidates(self) -> None:
        """Attach candidates to the next token (from any thread)."""
        self._candidates_requested = True

    def __iter__(self) -> Iterator[TokenEvent]:
        result = self.result
        decoder = self._decoder
        assembler = self._assembler
        sample, is_stop, piece_bytes = self._sample, self._is_stop_token, self._piece_bytes
        cancelled = self._cancel.is_set
        candidates_k = self._candidates_k
        tokens = result.tokens
        weigher, infos = self._weigher, result.token_info
        room = decoder.n_ctx
        limit = self._max_tokens if self._max_tokens > 0 else room
        gate = gates.installed()
        started = time.perf_counter()
        try:
            while True:
                if gate is not None:
                    gate("token", len(tokens), assembler.text)
                if cancelled():
                    result.stop_reason = "cancelled"
                    break
                if len(tokens) >= limit:
                    result.stop_reason = "length"
                    break
                if len(decoder.tokens) >= room:
                    result.stop_reason = "context_full"
                    break
                candidates = None
                weighing = weigher.weigh(decoder.logits()) if weigher is not None else None
                if candidates_k and (self._candidates_requested or not self._candidates_on_request):
                    self._candidates_requested = False
                    if weighing is not None:  # the softmax is done once a token
                        candidates = candidates_of(weighing, candidates_k, self._piece_text)
                    else:
                        candidates = top_candidates(
                            decoder.logits(), candidates_k, self._piece_text
                        )
                token = sample()
                if is_stop(token):
                    result.stop_reason = "stop_token"
                    break
                tokens.append(token)
                if weighing is not None:
                    infos.append(weighing.token_info(token))  # type: ignore[union-attr]
                text = assembler.push(piece_bytes(token))
                if assembler.stopped_by is not None:
                    result.stop_reason, result.stop_string = "stop_string", assembler.stopped_by
                    if text:
                        yield TokenEvent(token, text, candidates)
                    break
                yield TokenEvent(token, text, candidates)
                decoder.step(token)
            rest = assembler.finish()
            if rest:
                yield TokenEvent(-1, rest, None)
        finally:
            result.text = assembler.text
            if not result.stop_reason:  # the consumer closed the iterator early
                result.stop_reason = "cancelled"
            result.decode_seconds = time.perf_counter() - started
            if self._on_finish is not None:
                self._on_finish()

    def run(self) -> GenerationResult:
        for _ in self:
            pass
        return self.result
