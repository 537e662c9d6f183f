"""Talking HTTP to an OpenAI-compatible server: JSON requests, SSE streams, and the failures
a network brings, each turned into a ``RemoteError`` with one line that says what to do.

Every read is bounded (see ``limits.py``): in time by the transport's deadlines, in size by
the readers here. Requests are retried with exponential backoff only while that is safe and
useful: the connection was refused or broke, or the server answered 5xx or 429, and nothing
has been streamed yet. A timeout is not retried.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import GenerationError, ModelLoadError
from .limits import CONNECT_TIMEOUT, ServerLimits, human_size, raise_hint
from .transport import BoundedTransport, StopCheck, WaitExpired, Waits

DEFAULT_RETRIES = 2
BACKOFF_SECONDS = 0.5
MAX_RETRY_AFTER = 10.0
# An error answer is read only this far: ezchat shows one line of it.
ERROR_BODY_BYTES = 64 * 1024


class RemoteError(GenerationError):
    """The server could not be reached, failed, or cut the reply short."""


class ServerUnavailableError(RemoteError, ModelLoadError):
    """No usable server at the address given when the RemoteModel was created."""


class _Retryable(Exception):
    """A failure after which sending the same request again is safe and may succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StreamEnded(_Retryable):
    """The stream closed without ``[DONE]``; complete only if a finish reason came before."""


class ServerClient:
    """An httpx client bound to one server, with its error handling and limits in one place."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        limits: ServerLimits | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.retries = max(0, int(retries))
        self.limits = limits or ServerLimits()
        self.waits = Waits()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = self.limits.timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            transport=BoundedTransport(self.waits),
        )

    @property
    def timeout(self) -> float:
        return self.limits.timeout

    def close(self) -> None:
        self._http.close()

    def no_answer(self) -> str:
        """The message for a server that did not answer within the timeout."""
        return (
            f"the server at {self.base_url} did not answer within {self.timeout:g} s; it may "
            f"be overloaded or still evaluating a long prompt: try again, or "
            f"{raise_hint('timeout')}"
        )

    def went_quiet(self) -> str:
        """The message for a stream that stopped sending events midway."""
        return (
            f"the server at {self.base_url} sent nothing for {self.limits.idle_timeout:g} s "
            f"mid-reply; the partial reply is kept: check the server, or "
            f"{raise_hint('idle_timeout')}"
        )

    # --- plain requests ------------------------------------------------------------------------

    def get(self, path: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """GET ``path`` as JSON; None when ``missing_ok`` and the server has no such endpoint."""
        return self._request("GET", path, None, missing_ok)

    def post(
        self, path: str, body: dict[str, Any], *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """POST ``body`` as JSON, return the JSON answer (None: missing endpoint, if allowed)."""
        return self._request("POST", path, body, missing_ok)

    def _request(self, method: str, path: str, body: Any, missing_ok: bool) -> Any:
        def send() -> Any:
            # the whole answer, not each read alone, must come within the timeout
            with self.waits.waiting(self.timeout, self.no_answer()):
                try:
                    request = self._http.build_request(method, path, json=body)
                    response = self._http.send(request, stream=True)
                    try:
                        if missing_ok and response.status_code in (404, 405, 501):
                            return None
                        data = self._read_body(response, path)
                    finally:
                        response.close()
                except httpx.HTTPError as exc:
                    raise self._transport_failure(exc) from None
                except WaitExpired as exc:
                    raise RemoteError(str(exc)) from None
            self._check(response, data)
            return self._answer_json(data, path)

        return self._with_retries(send)

    def _read_body(self, response: httpx.Response, path: str) -> bytes:
        """The body, at most ``max_read`` bytes of it (decompressed); an error's, at most
        ``ERROR_BODY_BYTES``, cut there (only its first line is shown)."""
        failed = response.status_code >= 400
        limit = ERROR_BODY_BYTES if failed else self.limits.max_read
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                if failed:
                    chunks.append(chunk[: len(chunk) - (size - limit)])
                    break
                raise RemoteError(
                    f"{self.base_url}{path} answered more than {human_size(limit)}; is this "
                    f"an OpenAI-compatible server? If it is, {raise_hint('max_read')}"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _answer_json(self, data: bytes, path: str) -> dict[str, Any]:
        answer = _json_object(data)
        if answer is None:
            raise RemoteError(
                f"{self.base_url}{path} answered something that is not a JSON object; is this "
                "an OpenAI-compatible server?"
            ) from None
        return answer

    # --- streams -------------------------------------------------------------------------------

    def open_stream(
        self, path: str, body: dict[str, Any], stop: StopCheck | None = None
    ) -> httpx.Response:
        """POST ``body`` and return the open streaming response, once it answered 200. The
        caller reads it with ``events`` inside its own waits."""

        def send() -> httpx.Response:
            request = self._http.build_request("POST", path, json=body)
            try:
                response = self._http.send(request, stream=True)
                if response.status_code >= 400:
                    try:
                        data = self._read_body(response, path)
                    finally:
                        response.close()
                    self._check(response, data)
            except httpx.HTTPError as exc:
                raise self._transport_failure(exc) from None
            except WaitExpired as exc:
                raise RemoteError(str(exc)) from None
            if "html" in response.headers.get("content-type", "").lower():
                response.close()
                raise RemoteError(
                    f"{self.base_url}{path} answered a web page, not an event stream; is this "
                    "an OpenAI-compatible server?"
                )
            return response

        with self.waits.waiting(self.timeout, self.no_answer(), stop):
            return self._with_retries(send)

    def events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        """The JSON payloads of a server-sent-event stream, up to ``[DONE]``. A stream that
        breaks off raises ``_Retryable``, one that just stops raises ``StreamEnded`` (the
        caller knows whether a retry is still safe). A line or event over ``max_event``
        bytes, or a stream over ``max_read``, raises ``RemoteError``."""
        data: list[str] = []
        size = 0
        try:
            for line in self._lines(response):
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                    size += len(line)
                    if size > self.limits.max_event:
                        raise self._too_long("an event")
                elif line.startswith("error:"):  # llama.cpp sends failures as their own field
                    raise RemoteError(self._server_said(line[6:].strip(), "the reply failed"))
                elif not line and data:
                    payload = "\n".join(data)
                    data, size = [], 0
                    if payload.strip() == "[DONE]":
                        return
                    yield self._event_json(payload)
            if data and "\n".join(data).strip() != "[DONE]":
                yield self._event_json("\n".join(data))
        except httpx.HTTPError as exc:
            raise _Retryable(
                f"the connection to {self.base_url} broke off mid-reply ({_reason(exc)}); "
                "the partial reply is kept: check the server and try again"
            ) from None
        raise StreamEnded(
            f"the server at {self.base_url} ended the reply without finishing it; its log may "
            "say why (a prompt longer than its context?)"
        )

    def _lines(self, response: httpx.Response) -> Iterator[str]:
        """The stream's lines (ending at LF or CRLF), each at most ``max_event`` bytes, all
        together at most ``max_read``."""
        pending = b""
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self.limits.max_read:
                raise RemoteError(
                    f"the reply from {self.base_url} grew past {human_size(self.limits.max_read)}"
                    f"; the partial reply is kept: {raise_hint('max_read')}"
                )
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                yield line.removesuffix(b"\r").decode("utf-8", errors="replace")
            if len(pending) > self.limits.max_event:
                raise self._too_long("a line")
        if pending:
            yield pending.decode("utf-8", errors="replace")

    def _too_long(self, what: str) -> RemoteError:
        return RemoteError(
            f"the server at {self.base_url} streamed {what} longer than "
            f"{human_size(self.limits.max_event)}; the partial reply is kept: is it an "
            f"OpenAI-compatible server? If it is, {raise_hint('max_read')}"
        )

    def _event_json(self, payload: str) -> dict[str, Any]:
        event = _json_object(payload)
        if event is None:
            raise RemoteError(
                f"{self.base_url} streamed something that is not a JSON object: {payload[:60]!r}"
            ) from None
        if "error" in event:
            raise RemoteError(self._server_said(json.dumps(event), "the reply failed"))
        return event

    # --- errors and retries --------------------------------------------------------------------

    def _with_retries(self, send: Any) -> Any:
        attempt = 0
        while True:
            try:
                return send()
            except _Retryable as failure:
                delay = backoff_delay(attempt, failure.retry_after)
                wait = self.waits.current()
                # no retry that the wait's deadline would cut short: say what failed instead
                late = wait is not None and time.monotonic() + delay >= wait.deadline
                if attempt >= self.retries or late:
                    tries = f" (after {attempt + 1} tries)" if attempt else ""
                    raise RemoteError(f"{failure}{tries}") from None
                self.waits.pause(delay)
                attempt += 1

    def _transport_failure(self, exc: httpx.HTTPError) -> Exception:
        if isinstance(exc, httpx.ConnectError):
            return _Retryable(
                f"cannot reach the server at {self.base_url} ({_reason(exc)}); start it, or "
                "check the address given with --server"
            )
        if isinstance(exc, httpx.TimeoutException):  # waiting again would double the hang
            return RemoteError(self.no_answer())
        return _Retryable(
            f"the connection to {self.base_url} failed ({_reason(exc)}); check the server"
        )

    def _check(self, response: httpx.Response, body: bytes) -> None:
        status = response.status_code
        if status < 400:
            return
        path = response.request.url.path
        if status == 429:
            raise _Retryable(
                f"the server at {self.base_url} is busy (HTTP 429: too many requests); wait a "
                "moment and try again",
                retry_after=_retry_after(response),
            )
        text = body.decode("utf-8", errors="replace")
        if status >= 500 or status == 408:
            raise _Retryable(
                self._server_said(
                    text, f"the server at {self.base_url} failed on {path} (HTTP {status})"
                )
            )
        if status in (401, 403):
            raise RemoteError(
                f"the server at {self.base_url} refused the API key (HTTP {status}); pass the "
                "right one with api_key= or EZCHAT_API_KEY"
            )
        if status == 404:
            raise RemoteError(
                f"the server at {self.base_url} has no {path} (HTTP 404); is it an "
                "OpenAI-compatible server, and is the model name right?"
            )
        raise RemoteError(
            self._server_said(text, f"the server at {self.base_url} refused {path} (HTTP {status})")
        )

    def _server_said(self, body: str, what: str) -> str:
        detail = _error_detail(body)
        return f"{what}: {detail}" if detail else what


def normalize_base_url(url: str) -> str:
    """``host:port``, ``http://host:port/`` and ``http://host:port/v1`` all mean the server."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    return BACKOFF_SECONDS * 2**attempt


def _retry_after(response: httpx.Response) -> float | None:
    with contextlib.suppress(TypeError, ValueError):
        return float(response.headers.get("retry-after"))
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = text[-1] if text else type(exc).__name__
    if "refused" in reason.lower():
        return "connection refused"
    return reason[:120]


def _error_detail(body: str) -> str:
    """The server's own words, from the JSON error shapes of llama.cpp, vLLM, FastAPI and
    OpenAI, cut to one line."""
    detail: Any = body
    with contextlib.suppress(ValueError, RecursionError):
        detail = json.loads(body)
    for _ in range(3):
        if isinstance(detail, dict):
            detail = detail.get("error") or detail.get("detail") or detail.get("message") or ""
        elif isinstance(detail, list) and detail:
            detail = detail[0].get("msg", detail[0]) if isinstance(detail[0], dict) else detail[0]
    lines = str(detail or "").strip().splitlines()
    return lines[0][:200] if lines else ""


def _json_object(text: str | bytes) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None for anything else (bad JSON, another type, or
    nesting deep enough to exhaust the parser)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
