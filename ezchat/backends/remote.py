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
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from ..chat.samplers import SamplerSettings
from ..engine.calls import GenerationCalls
from ..engine.results import Candidate, EvalReport, ProgressReport
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
from .servers import (
    FALLBACK_CONTEXT,
    LLAMA_CPP,
    LLAMA_CPP_PYTHON,
    OPENAI,
    VLLM,
    ServerInfo,
    TokenInfo,
    detect,
    logprob_fields,
    parse_chunk,
    sampling_fields,
)
from .streaming import SHAPE_ERRORS, RemoteGeneration
from .tokens import (
    END_MARKER,
    MARKER_IDS,
    MARKER_ROLES,
    MARKER_TEXT,
    EstimatedVocab,
    TokenMemory,
    is_estimated,
    is_marker,
    split_markers,
)
from .transport import ReadStopped

API_KEY_ENV = "EZCHAT_API_KEY"
_CONTEXT_IN_ERROR = re.compile(r"context (?:window|size|length)[^0-9]{0,20}(\d{3,7})", re.I)


def _default_sampler() -> SamplerSettings:
    from ..chat import samplers

    return samplers.load_default()


class RemoteModel(ServerCacheCalls, GenerationCalls):
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

    # --- tokens --------------------------------------------------------------------------------

    def tokenize(self, text: str, add_bos: bool | None = None, special: bool = True) -> list[int]:
        """Text to the server's token ids (estimated ids where it cannot tokenize).
        ``special=False`` keeps ``<|im_end|>`` as text where the server can (llama.cpp; the
        other engines always parse special tokens)."""
        self._require()
        if add_bos is None:
            add_bos = self.add_bos
        head = [self.bos_token] if add_bos and self.bos_token >= 0 else []
        if special and "\ue000" in text:
            body: list[int] = []
            for part in split_markers(text):
                marker = MARKER_IDS.get(part)
                body += [marker] if marker is not None else self._tokenize_text(part, special)
            return head + body
        return head + self._tokenize_text(text, special)

    def _tokenize_text(self, text: str, special: bool) -> list[int]:
        if not text:
            return []
        if not self.info.tokenizes:
            return self._estimated.tokenize(text)
        try:
            tokens = self._server_tokenize(text, add_bos=False, special=special)
        except SHAPE_ERRORS:
            raise RemoteError(self._odd_answer()) from None
        self._memory.remember(tokens, text)
        return tokens

    def _server_tokenize(self, text: str, add_bos: bool, special: bool) -> list[int]:
        client = self._require()
        kind = self.info.kind
        if kind == LLAMA_CPP:
            answer = client.post(
                "/tokenize",
                {
                    "content": text,
                    "add_special": add_bos,
                    "parse_special": special,
                    "with_pieces": True,
                },
            )
            tokens = []
            for item in answer.get("tokens", []):
                if isinstance(item, dict):
                    piece = item.get("piece", "")
                    data = bytes(piece) if isinstance(piece, list) else str(piece).encode()
                    self._memory.remember_piece(int(item["id"]), data)
                    tokens.append(int(item["id"]))
                else:
                    tokens.append(int(item))
            return tokens
        if kind == VLLM:
            answer = client.post(
                "/tokenize",
                {"model": self.model_id, "prompt": text, "add_special_tokens": add_bos},
            )
            return [int(t) for t in answer.get("tokens", [])]
        body = {"input": text}
        if self.model_id:
            body["model"] = self.model_id
        tokens = [int(t) for t in client.post("/extras/tokenize", body).get("tokens", [])]
        # llama-cpp-python adds the BOS token whenever the model asks for one.
        bos = getattr(self, "bos_token", -1)
        if not add_bos and getattr(self, "add_bos", False) and tokens[:1] == [bos]:
            tokens = tokens[1:]
        return tokens

    def _probe_bos(self) -> tuple[bool, int]:
        """Whether the server starts prompts with a BOS token, and its id."""
        if not self.info.tokenizes:
            return False, -1
        with_special = self._server_tokenize("", add_bos=True, special=True)
        if with_special:
            return True, with_special[0]
        if self.info.bos_text:
            return False, self._single_id(self.info.bos_text)
        return False, -1

    def _server_detokenize(self, tokens: list[int]) -> str:
        client = self._require()
        kind = self.info.kind
        if kind == LLAMA_CPP:
            return str(client.post("/detokenize", {"tokens": tokens}).get("content", ""))
        if kind == VLLM:
            answer = client.post("/detokenize", {"model": self.model_id, "tokens": tokens})
            return str(answer.get("prompt", ""))
        if kind == LLAMA_CPP_PYTHON:
            return str(client.post("/extras/detokenize", {"tokens": tokens}).get("text", ""))
        return ""

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> str:
        """Token ids to text, from what ezchat remembers and else from the server. Server-format
        markers are rendered only with ``special=True``."""
        self._require()
        return self._text_of(list(tokens), special)

    def _text_of(self, tokens: list[int], special: bool = True) -> str:
        memory = self._memory
        out: list[str] = []
        i, n = 0, len(tokens)
        while i < n:
            token = tokens[i]
            if token < 0:
                if is_estimated(token):
                    out.append(self._estimated.text(token))
                elif special and is_marker(token):
                    out.append(MARKER_TEXT[token])
                i += 1
                continue
            match = memory.longest_match(tokens, i)
            if match is not None:
                out.append(match[1])
                i += match[0]
                continue
            j = i + 1
            while j < n and tokens[j] >= 0 and memory.longest_match(tokens, j) is None:
                j += 1
            run = tokens[i:j]
            known = memory.join_pieces(run)
            if known is None:
                try:
                    known = self._server_detokenize(run)
                except SHAPE_ERRORS:
                    raise RemoteError(self._odd_answer()) from None
            out.append(known)
            i = j
        return "".join(out)

    def token_text(self, token: int) -> str:
        """A token's text for display ('' for an id the server does not know)."""
        if token < 0:
            if is_marker(token):
                return MARKER_TEXT[token]
            return self._estimated.text(token) if is_estimated(token) else ""
        text = self._token_texts.get(token)
        if text is None:
            text = self._text_of([token])
            self._token_texts[token] = text
        return text

    def _single_id(self, text: str) -> int:
        """The id of the one token ``text`` is, or -1 if it is none or several."""
        if not text:
            return -1
        known = self._memory.single_ids.get(text)
        if known is not None:
            return known
        tokens = self.tokenize(text, add_bos=False, special=True)
        return tokens[0] if len(tokens) == 1 else -1

    def get_length(self, text: str) -> int:
        """Length of ``text`` in tokens, including the BOS token the model adds."""
        return len(self.tokenize(text, add_bos=True))

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
