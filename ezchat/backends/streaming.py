"""``RemoteGeneration``: one reply streamed from a server over server-sent events, with the
same contract as a local ``Generation``: iterate it for ``TokenEvent``s, ``cancel()`` it from
any thread (the stream is closed, which tells the server to stop), read ``result`` at the end.

A stream that fails before anything arrived is sent again with backoff; one that breaks off
midway keeps the partial reply (``stop_reason == "error"``) and raises ``RemoteError``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from ..engine.results import EvalReport, GenerationResult, TokenEvent
from .http import RemoteError, StreamEnded, _Retryable, backoff_delay
from .servers import Chunk, OddField, TokenInfo, parse_chunk
from .transport import ReadStopped, WaitExpired
from .weights import ids_by_text, token_info_from_stream

# What parsing JSON of an unexpected shape raises (a list where an object belongs, ...): at
# the edge with a server, that is the server's mistake, reported as one.
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError)

if TYPE_CHECKING:
    from .remote import RemoteModel


class RemoteGeneration:
    """One streamed reply; the same contract as ``ezchat.engine.generation.Generation``."""

    def __init__(
        self,
        model: RemoteModel,
        path: str,
        body: dict[str, Any],
        prompt_tokens: list[int],
        candidates_k: int,
        token_info: bool = False,
    ) -> None:
        self._model = model
        self._path = path
        self._body = body
        self._prompt_tokens = prompt_tokens
        self._candidates_k = candidates_k
        self._token_info = token_info
        self._cancel = threading.Event()
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()
        self._pending_ids: list[tuple[Any, str]] = []
        self.result = GenerationResult(prompt=EvalReport(prompt_tokens=len(prompt_tokens)))

    def candidates_only_on_request(self) -> bool:
        """Returns False: every token keeps its candidates. The server sends the top
        log-probabilities with every token anyway, and turning them into candidates is cheap
        beside the network."""
        return False

    def request_candidates(self) -> None:
        """Nothing to do: every token carries candidates."""

    def cancel(self) -> None:
        """Stop the reply from any thread: the stream is closed, which also tells the server
        to stop; the text so far stays in ``result``."""
        self._cancel.set()
        with self._lock:
            response = self._response
        if response is not None:
            # Closing from another thread may race the reader; it stops either way.
            with contextlib.suppress(Exception):
                response.close()

    def __iter__(self) -> Iterator[TokenEvent]:
        model = self._model
        client = model._client
        result = self.result
        infos: list[TokenInfo] = []
        texts: list[str] = []
        state = {"usage": None, "timings": None, "finish": None}
        started = time.perf_counter()
        first_at: float | None = None
        attempt = 0
        try:
            while not self._cancel.is_set():
                try:
                    response = client.open_stream(self._path, self._body, self._cancel.is_set)
                    with self._lock:
                        self._response = response
                    if self._cancel.is_set():
                        break
                    for event in self._bounded(client.events(response), first=not texts):
                        chunk = self._parse(event)
                        if first_at is None and (chunk.text or chunk.tokens):
                            first_at = time.perf_counter()
                        state["usage"] = chunk.usage or state["usage"]
                        state["timings"] = chunk.timings or state["timings"]
                        state["finish"] = chunk.finish_reason or state["finish"]
                        # Recorded before yielding: a consumer that stops here keeps this text.
                        infos += chunk.tokens
                        texts.append(chunk.text)
                        yield from self._token_events(chunk.text, chunk.tokens)
                        if self._cancel.is_set():
                            break
                    if state["finish"] is None and not self._cancel.is_set():
                        raise StreamEnded(
                            f"the server at {model.base_url} stopped the reply before it was "
                            "finished (another request may have interrupted it); the partial "
                            "reply is kept"
                        )
                    break
                except _Retryable as failure:
                    if self._cancel.is_set():
                        break
                    if isinstance(failure, StreamEnded) and state["finish"] is not None:
                        break  # no [DONE], but the server said the reply was finished
                    if texts or attempt >= client.retries:
                        raise RemoteError(str(failure)) from None
                    client.waits.pause(backoff_delay(attempt), self._cancel.is_set)
                    attempt += 1
                except ReadStopped:
                    break  # cancelled while the server was silent
                except (httpx.HTTPError, RuntimeError, AttributeError, OSError):
                    if self._cancel.is_set():  # the stream was closed under the reader
                        break
                    raise
        except RemoteError as exc:
            result.stop_reason = "error"
            model._learn_context(str(exc))
            raise
        finally:
            self._finish(infos, "".join(texts), state, started, first_at)

    def _bounded(self, events: Iterator[dict[str, Any]], first: bool) -> Iterator[dict[str, Any]]:
        """The stream's events, each within its time: the first within the timeout (the
        prompt is evaluated before it), each next one within the idle timeout. Only the wait
        for an event is timed, not what the consumer does with it."""
        client = self._model._client
        while True:
            if first:
                seconds, message = client.timeout, client.no_answer()
            else:
                seconds, message = client.limits.idle_timeout, client.went_quiet()
            try:
                with client.waits.waiting(seconds, message, self._cancel.is_set):
                    event = next(events, None)
            except WaitExpired as exc:
                raise RemoteError(str(exc)) from None
            if event is None:
                return
            first = False
            yield event

    def _parse(self, event: dict[str, Any]) -> Chunk:
        try:
            return parse_chunk(event)
        except SHAPE_ERRORS as exc:
            what = f"{exc}: " if isinstance(exc, OddField) else ""
            raise RemoteError(
                f"the server at {self._model.base_url} streamed an event ezchat cannot read "
                f"({what}{str(event)[:60]}); the partial reply is kept: is it an "
                "OpenAI-compatible server?"
            ) from None

    def _token_events(self, text: str, infos: list[TokenInfo]) -> Iterator[TokenEvent]:
        k = self._candidates_k
        if not infos:
            if text:
                yield TokenEvent(-1, text, None)
            return
        model = self._model
        pending = self._pending_ids
        # Several tokens in one chunk (vLLM): split the text where the tokens spell it.
        split = len(infos) > 1 and "".join(info.text for info in infos) == text
        last = len(infos) - 1
        for index, info in enumerate(infos):
            piece = info.text if split else (text if index == last else "")
            candidates = (
                model._candidates(info.candidates, k, pending) if k and info.candidates else None
            )
            token = info.id
            if token is not None and token >= 0 and info.piece is not None:
                model._memory.remember_piece(token, info.piece)
            event = TokenEvent(token if token is not None else -1, piece, candidates)
            if token is None and k and info.text:
                # No request may run beside the stream: llama-cpp-python's server would end
                # the stream to serve it. The id is filled in when the reply is over.
                known = model._memory.single_ids.get(info.text)
                if known is None:
                    pending.append((event, info.text))
                else:
                    event.id = known
            yield event

    def _resolve_pending_ids(self) -> None:
        """Give the events and candidates that streamed without an id their token id."""
        model = self._model
        try:
            for holder, text in self._pending_ids:
                holder.id = model._single_id(text)
        except RemoteError:
            pass  # the server is gone: those ids stay -1 (not branchable), the text is kept
        self._pending_ids.clear()

    def _finish(
        self,
        infos: list[TokenInfo],
        text: str,
        state: dict[str, Any],
        started: float,
        first_at: float | None,
    ) -> None:
        model = self._model
        result = self.result
        with self._lock:
            response, self._response = self._response, None
        try:
            if response is not None:
                response.close()
            result.text = text
            self._resolve_pending_ids()
            result.tokens = model._reply_tokens(infos, text)
            if self._token_info:
                # after the stream: asking the server for ids can no longer end it
                result.token_info = token_info_from_stream(
                    infos, result.tokens, text, ids_by_text(model._single_id)
                )
            if not result.stop_reason:
                if self._cancel.is_set() or state["finish"] is None:
                    result.stop_reason = "cancelled"
                elif state["finish"] == "length":
                    used = len(self._prompt_tokens) + len(result.tokens)
                    full = used >= model.context_length - 1
                    result.stop_reason = "context_full" if full else "length"
                else:
                    result.stop_reason = "stop_token"
            result.prompt = _eval_report(
                len(self._prompt_tokens), state["usage"], state["timings"], started, first_at
            )
            result.decode_seconds = time.perf_counter() - (first_at or started)
            model._last_eval = result.prompt
        finally:
            model._busy = False

    def run(self) -> GenerationResult:
        for _ in self:
            pass
        return self.result


def _eval_report(
    prompt_tokens: int,
    usage: dict[str, Any] | None,
    timings: dict[str, Any] | None,
    started: float,
    first_at: float | None,
) -> EvalReport:
    """The prompt's cost as the server reports it: llama.cpp's ``timings`` say how much of the
    prompt came from its cache; OpenAI's ``usage`` may say it as ``cached_tokens``."""
    usage = usage or {}
    timings = timings or {}
    counted = int(usage.get("prompt_tokens") or prompt_tokens)
    details = usage.get("prompt_tokens_details") or {}
    reused = int(timings.get("cache_n") or details.get("cached_tokens") or 0)
    evaluated = int(timings["prompt_n"]) if "prompt_n" in timings else max(0, counted - reused)
    if "prompt_ms" in timings:
        seconds = float(timings["prompt_ms"]) / 1000
    else:
        seconds = (first_at or time.perf_counter()) - started
    return EvalReport(
        prompt_tokens=counted, reused=reused, shifted=0, evaluated=evaluated, seconds=seconds
    )
