"""The token ids in a server's answers: the next-token candidates after a prompt (ids
learned where the server names only the text), a finished reply's ids, and the context size
a server names when it refuses a prompt."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..chat.samplers import SamplerSettings
from ..engine.results import Candidate
from ..errors import GenerationError
from .http import RemoteError, ServerClient
from .servers import VLLM, ServerInfo, TokenInfo, logprob_fields, parse_chunk, sampling_fields
from .streaming import SHAPE_ERRORS
from .tokens import EstimatedVocab, TokenMemory

_CONTEXT_IN_ERROR = re.compile(r"context (?:window|size|length)[^0-9]{0,20}(\d{3,7})", re.I)


class AnswerTokens:
    """Mixed into ``RemoteModel``, whose request building and tokenizer these calls use."""

    base_url: str
    model_id: str | None
    info: ServerInfo
    add_bos: bool
    bos_token: int
    _memory: TokenMemory
    _estimated: EstimatedVocab
    context_length: int
    n_ctx: int
    _client: ServerClient
    _busy: bool
    _require: Callable[[], ServerClient]
    _odd_answer: Callable[[], str]
    tokenize: Callable[..., list[int]]
    token_text: Callable[[int], str]
    _single_id: Callable[[str], int]
    _check_fits: Callable[[list[int], int], None]
    _request: Callable[[list[int], int], tuple[str, dict[str, Any]]]

    def candidates(self, prompt: str | list[int], k: int) -> list[Candidate]:
        """The top ``k`` next tokens after ``prompt`` with the server's probabilities (the
        softmax over the whole vocabulary on llama.cpp and llama-cpp-python), most likely
        first. Raises RemoteError when the server gives no log-probabilities."""
        self._require()
        if self._busy:
            raise GenerationError("this model is generating; ask for candidates afterwards")
        tokens = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        self._check_fits(tokens, room=1)
        path, body = self._request(tokens, 1)
        body.update(
            sampling_fields(self.info.kind, SamplerSettings(temp=0.0), 1, self.context_length)
        )
        body.update(logprob_fields(self.info.kind, k, chat=path.endswith("chat/completions")))
        try:
            answer = self._client.post(path, body)
        except RemoteError as exc:
            self._learn_context(str(exc))
            raise
        try:
            infos = parse_chunk(answer).tokens
        except SHAPE_ERRORS:
            raise RemoteError(self._odd_answer()) from None
        if not infos or not infos[0].candidates:
            raise RemoteError(
                f"the server at {self.base_url} sent no log-probabilities, so there are no "
                "candidates to show; it may not support logprobs"
            )
        return self._candidates(infos[0].candidates, k)

    def _candidates(
        self,
        raw: list[tuple[int | None, str, float]],
        k: int,
        pending: list[tuple[Any, str]] | None = None,
    ) -> list[Candidate]:
        """Candidates with ids. A server that names only the text (llama-cpp-python) is asked
        for the id, unless ``pending`` is given: then the id is -1 for now and the candidate
        goes on that list, to be filled in once the stream is over."""
        out = []
        for token, text, prob in raw[:k]:
            late = False
            if token is None:
                known = self._memory.single_ids.get(text)
                late = known is None and pending is not None and bool(text)
                token = -1 if late else known if known is not None else self._single_id(text)
            if not text and token >= 0:
                text = self.token_text(token)
            candidate = Candidate(text, prob, token)
            if late and pending is not None:
                pending.append((candidate, text))
            out.append(candidate)
        return out

    def _learn_context(self, message: str) -> None:
        """A server that rejects a prompt as too long often says its context size: use it."""
        match = _CONTEXT_IN_ERROR.search(message)
        if match and self.info.context_length is None:
            self.context_length = self.n_ctx = int(match.group(1))

    def _reply_tokens(self, infos: list[TokenInfo], text: str) -> list[int]:
        """The ids of a reply's text: the streamed ids when they spell it exactly, else the
        server's tokenization, else (server gone) estimated ids that keep the text.

        A token that ended the reply and spells nothing (llama-server streams its end-of-turn
        token, with an empty piece) is left out, as the local model leaves out its stop token.
        """
        while infos and not infos[-1].text and not infos[-1].piece:
            infos = infos[:-1]
        ids = [info.id for info in infos]
        if ids and all(token is not None and token >= 0 for token in ids):
            exact = [int(token) for token in ids if token is not None]
            pieces = [info.piece for info in infos]
            if all(piece is not None for piece in pieces):
                spelled: str | None = b"".join(pieces).decode("utf-8", errors="replace")  # type: ignore[arg-type]
            elif all(info.text for info in infos) and self.info.kind != VLLM:
                spelled = "".join(info.text for info in infos)
            else:
                spelled = None
            if spelled == text:
                self._memory.remember(exact, text)
                return exact
        if not text:
            return []
        try:
            return self.tokenize(text, add_bos=False, special=False)
        except RemoteError:
            return self._estimated.tokenize(text)
