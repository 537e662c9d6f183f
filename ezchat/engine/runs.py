"""Running a loaded Model: evaluating a prompt into the cache, starting a ``Generation`` with
its sampler chain and stop rules, and the next-token candidates."""

from __future__ import annotations

from collections.abc import Callable

import llama_cpp
import numpy as np

from ..chat.samplers import SamplerSettings
from ..errors import GenerationError, PromptTooLongError
from .decoder import Decoder
from .generation import Generation, top_candidates
from .grow import Growth, start_grow
from .results import Candidate, EvalReport
from .sampling import build_chain


def _default_sampler() -> SamplerSettings:
    from ..chat import samplers

    return samplers.load_default()


class RunCalls:
    """Mixed into ``Model``, which loads the weights, the decoder and the vocabulary these
    calls use; one generation at a time (``_busy``)."""

    context_length: int
    n_vocab: int
    _llama: llama_cpp.Llama | None
    _model_ptr: llama_cpp.llama_model_p
    _vocab_ptr: llama_cpp.llama_vocab_p
    _busy: bool
    _require_decoder: Callable[[], Decoder]
    _check_file_intact: Callable[[], None]
    tokenize: Callable[..., list[int]]
    check_text_fits: Callable[[str], None]
    is_eog: Callable[[int], bool]
    token_bytes: Callable[[int], bytes]
    token_text: Callable[[int], str]

    def _prompt_tokens(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            self.check_text_fits(prompt)
            return self.tokenize(prompt)
        return list(prompt)

    def ingest(self, text: str | list[int]) -> EvalReport:
        """Evaluate ``text`` into the cache so later prompts that start with it begin faster."""
        tokens = self._prompt_tokens(text)
        self._check_fits(tokens, room=0)
        self._check_file_intact()
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
        token_info: bool = False,
    ) -> Generation:
        """Evaluate ``prompt`` and return a ``Generation``: iterate it for ``TokenEvent``s,
        ``cancel()`` it from any thread, read ``result`` at the end. ``candidates=k`` attaches
        the top-k next-token candidates to every event. ``allow_shift``: ``prompt`` is the
        cached conversation with messages left out, so the cache may slide instead of
        re-evaluating (Thread sets it when it truncates). ``token_info``: keep how the model
        weighed every generated token (its probability and top 10) in ``result.token_info``;
        a Thread asks for it, plain calls do not pay for it."""
        decoder = self._require_decoder()
        self._check_file_intact()
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
            token_info=token_info,
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
        self._check_file_intact()
        return start_grow(
            self, self._prompt_tokens(prompt), n, sampler or _default_sampler(), stops
        )

    def candidates(self, prompt: str | list[int], k: int) -> list[Candidate]:
        """The top ``k`` next tokens after ``prompt``, with probabilities from the softmax over
        the whole vocabulary, most likely first. The evaluated prompt stays in the cache."""
        decoder = self._require_decoder()
        self._check_file_intact()
        tokens = self._prompt_tokens(prompt)
        self._check_fits(tokens, room=0)
        if self._busy:
            raise GenerationError("this model is generating; ask for candidates afterwards")
        decoder.prepare(tokens)
        return top_candidates(decoder.logits(), k, self.token_text)
