"""``RemoteModel``: a model served by llama.cpp's ``llama-server``, vLLM, llama-cpp-python's
server or another OpenAI-compatible engine, behind the same interface as ``ez.Model``.

The Thread builds its prompt as token ids exactly as it does for a local model (ezchat's own
formats, prefix, continue, reroll and branch all work the same). The prompt then travels to
``/v1/completions``:

* as those very token ids where the server accepts them (llama.cpp, vLLM), so text that the
  user typed stays text even when it looks like a special token, and the server's prompt cache
  sees the same tokens turn after turn;
* as text where it does not (llama-cpp-python, others). ezchat remembers which text each id
  sequence came from, so the text is rebuilt exactly, special tokens included, without asking
  the server (llama-cpp-python's detokenize would drop them).

The ``server`` format instead sends the messages to ``/v1/chat/completions`` and lets the
server apply its own chat template (see ``tokens.py`` for how the Thread's prompt carries them).

The token calls live in ``remote_tokens.py``, the reading of ids out of answers (candidates, a
reply's tokens) in ``remote_answers.py``; this module connects and sends.
"""

from __future__ import annotations

import os
from typing import Any

from ..chat.samplers import SamplerSettings
from ..engine.calls import GenerationCalls
from ..engine.results import EvalReport, ProgressReport
from ..engine.weighing import TOKEN_INFO_K
from ..errors import GenerationError, LoadCancelled, ModelUnloadedException, PromptTooLongError
from .capabilities import ServerCacheCalls, grammar_fields
from .http import (
    DEFAULT_RETRIES,
    RemoteError,
    ServerClient,
    ServerUnavailableError,
)
from .limits import ServerLimits
from .remote_answers import AnswerTokens
from .remote_tokens import RemoteTokenCalls
from .servers import (
    FALLBACK_CONTEXT,
    OPENAI,
    VLLM,
    ServerInfo,
    detect,
    logprob_fields,
    sampling_fields,
)
from .streaming import SHAPE_ERRORS, RemoteGeneration
from .tokens import (
    END_MARKER,
    MARKER_ROLES,
    EstimatedVocab,
    TokenMemory,
    is_marker,
)
from .transport import ReadStopped

API_KEY_ENV = "EZCHAT_API_KEY"


def _default_sampler() -> SamplerSettings:
    from ..chat import samplers

    return samplers.load_default()


class RemoteModel(RemoteTokenCalls, AnswerTokens, ServerCacheCalls, GenerationCalls):
    """A model on an OpenAI-compatible server at ``base_url`` (``http://host:port``; a
    trailing ``/v1`` is fine). ``model`` picks one of several served models (default: the
    first), ``api_key`` (or ``$EZCHAT_API_KEY``) is sent as a bearer token. ``retries`` is how
    often a request that failed before anything was streamed is sent again (a timeout is
    not). ``context_length`` overrides what the server reports (llama-cpp-python's server
    reports nothing; 2048 is its default).

    The limits (see ``ezchat/backends/limits.py``; ``None`` is the default): ``timeout``
    seconds for an answer (connecting as a whole included), ``idle_timeout`` seconds between
    two events of a stream, ``max_read_mb`` MiB in one answer. ``progress`` is asked while
    connecting, as ``Model``'s is while loading: returning False stops (``LoadCancelled``).

    Raises ``ServerUnavailableError`` (an ``ez.ModelLoadError``) when no server answers.
    """

    runs_in_process = False  # the Backend protocol's answer: the server runs the model

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int = DEFAULT_RETRIES,
        *,
        context_length: int | None = None,
        idle_timeout: float | None = None,
        max_read_mb: float | None = None,
        progress: ProgressReport | None = None,
    ) -> None:
        self._closed = True
        self._client = ServerClient(
            base_url,
            api_key or os.environ.get(API_KEY_ENV) or None,
            ServerLimits.of(timeout, idle_timeout, max_read_mb),
            retries,
        )
        self.base_url = self._client.base_url
        self._memory = TokenMemory()
        self._estimated = EstimatedVocab()
        self._token_texts: dict[int, str] = {}
        self._busy = False
        self._last_eval = EvalReport()
        self._connect(model, context_length, progress)
        self.metadata: dict[str, Any] = {"general.name": self.name, "ezchat.server": self.base_url}
        if self.info.chat_template:
            self.metadata["tokenizer.chat_template"] = self.info.chat_template

    def _connect(
        self, model: str | None, context_length: int | None, progress: ProgressReport | None
    ) -> None:
        """Learn what the server is, all within one timeout; stop when ``progress`` says."""
        client = self._client

        def stop() -> bool:
            return progress is not None and progress(0.0) is False

        try:
            with client.waits.waiting(client.timeout, client.no_answer(), stop):
                self.info: ServerInfo = detect(client, model)
                self._closed = False
                self.server_kind = self.info.kind
                self.model_id = self.info.model_id
                self.context_length = int(
                    context_length or self.info.context_length or FALLBACK_CONTEXT
                )
                self.n_ctx = self.context_length
                self.add_bos, self.bos_token = self._probe_bos()
                eos = self.info.eos_text
                self.eos_token = self._single_id(eos) if eos else -1
        except ReadStopped:
            self._close_connection()
            raise LoadCancelled(f"connecting to {self.base_url} was stopped") from None
        except RemoteError as exc:
            self._close_connection()
            raise ServerUnavailableError(str(exc)) from None
        except SHAPE_ERRORS:
            self._close_connection()
            raise ServerUnavailableError(self._odd_answer()) from None
        if progress is not None:
            progress(1.0)

    def _close_connection(self) -> None:
        self._closed = True
        self._client.close()

    def _odd_answer(self) -> str:
        return (
            f"the server at {self.base_url} answered JSON in a shape ezchat does not know; is "
            "it an OpenAI-compatible server?"
        )

    # --- facts ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        model_id = self.model_id or self.base_url
        stem = model_id.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem

    @property
    def description(self) -> str:
        # a server does not say how its model is quantised
        return f"{self.name} on {self.base_url}"

    @property
    def is_loaded(self) -> bool:
        return not self._closed

    @property
    def last_eval(self) -> EvalReport:
        return self._last_eval

    @property
    def filename(self) -> str:
        """Where the model lives, for the interfaces that show a model's file."""
        return f"{self.base_url} ({self.model_id or 'default model'})"

    def context_fingerprint(self) -> str:
        """What answers from this model are valid for (the response cache's key): the server,
        the model it serves and the context length."""
        return f"remote|{self.base_url}|{self.model_id or ''}|{self.context_length}"

    def __repr__(self) -> str:
        state = "" if self.is_loaded else ", closed"
        return (
            f"RemoteModel({self.base_url!r}, model={self.model_id!r}, "
            f"kind={self.server_kind!r}, context_length={self.context_length}{state})"
        )

    # --- lifetime ------------------------------------------------------------------------------

    def unload(self) -> None:
        """Close the connection; the server keeps running. Using the model afterwards raises
        ModelUnloadedException."""
        if not self._closed:
            self._closed = True
            self._client.close()

    close = unload

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unload()

    def _require(self) -> ServerClient:
        if self._closed:
            raise ModelUnloadedException(
                f"the connection to {self.base_url} was closed; connect again with "
                "ez.RemoteModel(...)"
            )
        return self._client

    # --- running -------------------------------------------------------------------------------

    def start(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
        candidates: int = 0,
        *,
        allow_shift: bool = False,  # the server manages its own cache
        grammar: str | None = None,
        token_info: bool = False,
    ) -> RemoteGeneration:
        """Send ``prompt`` and return a ``RemoteGeneration``: iterate it for ``TokenEvent``s,
        ``cancel()`` it from any thread (the stream is closed; the partial reply is kept), read
        ``result`` at the end. Integer stops are ignored: servers stop on their model's own
        end-of-generation tokens. ``grammar`` (GBNF) constrains the reply where the server
        takes one (see ``capabilities.py``). ``token_info`` asks for the top 10 of every token
        and keeps the server's weighing in ``result.token_info`` (see ``weights.py``)."""
        self._require()
        constraint = grammar_fields(self.info, grammar, self.base_url)
        if self._busy:
            raise GenerationError("this model is already generating; one generation at a time")
        sampler = sampler or _default_sampler()
        tokens = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        self._check_fits(tokens, room=1)
        room = self.context_length - len(tokens)
        limit = sampler.max_len_tokens
        path, body = self._request(tokens, max(1, min(limit, room) if limit > 0 else room))
        body.update(
            sampling_fields(self.info.kind, sampler, body.pop("max_tokens"), self.context_length)
        )
        asked = max(candidates, TOKEN_INFO_K) if token_info else candidates
        body.update(logprob_fields(self.info.kind, asked, chat=path.endswith("chat/completions")))
        body.update(constraint)
        body["stream"] = True
        if self.info.kind in (VLLM, OPENAI):
            body["stream_options"] = {"include_usage": True}
        stop_strings = [s for s in (stops or []) if isinstance(s, str) and s]
        if stop_strings:
            body["stop"] = stop_strings
        self._busy = True
        return RemoteGeneration(self, path, body, tokens, candidates, token_info)

    def _check_fits(self, tokens: list[int], room: int) -> None:
        if len(tokens) + room > self.context_length:
            raise PromptTooLongError(
                f"the prompt is {len(tokens)} tokens but the server's context holds "
                f"{self.context_length}; shorten it, or start the server with a larger context"
            )

    def _request(self, tokens: list[int], max_tokens: int) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"max_tokens": max_tokens}
        if self.model_id:
            body["model"] = self.model_id
        if any(is_marker(t) for t in tokens):
            body.update(self._chat_body(tokens))
            return "/v1/chat/completions", body
        body["prompt"] = self._prompt_field(tokens)
        return "/v1/completions", body

    def _prompt_field(self, tokens: list[int]) -> list[int] | str:
        if self.info.takes_token_prompts and all(t >= 0 for t in tokens):
            return tokens
        # The server adds its own BOS to a text prompt.
        if self.add_bos and tokens[:1] == [self.bos_token]:
            tokens = tokens[1:]
        return self._text_of(tokens)

    def _chat_body(self, tokens: list[int]) -> dict[str, Any]:
        """The server format's prompt as chat messages. Text after the last assistant marker
        (a prefix, or the reply being continued) is sent as an unfinished assistant message."""
        messages: list[dict[str, str]] = []
        role: str | None = None
        span: list[int] = []
        for token in tokens:
            if token in MARKER_ROLES:
                role, span = MARKER_ROLES[token], []
            elif token == END_MARKER:
                if role is not None:
                    messages.append({"role": role, "content": self._text_of(span)})
                role, span = None, []
            elif role is not None:
                span.append(token)
        body: dict[str, Any] = {"messages": messages}
        if role == "assistant" and span:
            messages.append({"role": "assistant", "content": self._text_of(span)})
            if self.info.kind == VLLM:
                body.update(continue_final_message=True, add_generation_prompt=False)
        return body
