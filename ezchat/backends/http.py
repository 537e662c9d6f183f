"""Talking HTTP to an OpenAI-compatible server: JSON requests, SSE streams, and the failures
a network brings, each turned into a ``RemoteError`` with one line that says what to do.

Requests are retried with exponential backoff only while that is safe: the connection was
refused or timed out, or the server answered 5xx or 429, and nothing has been streamed yet.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import GenerationError, ModelLoadError

# Waiting for a slow prompt is normal on a big model, so the read timeout is generous; a
# server that does not even accept the connection is given much less time.
DEFAULT_TIMEOUT = 120.0
CONNECT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
BACKOFF_SECONDS = 0.5
MAX_RETRY_AFTER = 10.0


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
    """An httpx client bound to one server, with its error handling in one place."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.retries = max(0, int(retries))
        self.timeout = float(timeout)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT)),
        )

    def close(self) -> None:
        self._http.close()

    # --- plain requests ------------------------------------------------------------------------

    def get(self, path: str, *, missing_ok: bool = False) -> Any:
        """GET ``path`` as JSON; None when ``missing_ok`` and the server has no such endpoint."""
        return self._request("GET", path, None, missing_ok)

    def post(self, path: str, body: dict[str, Any], *, missing_ok: bool = False) -> Any:
        """POST ``body`` as JSON, return the JSON answer (None: missing endpoint, if allowed)."""
        return self._request("POST", path, body, missing_ok)

    def _request(self, method: str, path: str, body: Any, missing_ok: bool) -> Any:
        def send() -> Any:
            try:
                response = self._http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                raise self._transport_failure(exc) from None
            if missing_ok and response.status_code in (404, 405, 501):
                return None
            self._check(response)
            try:
                return response.json()
            except ValueError:
                raise RemoteError(
                    f"{self.base_url}{path} answered something that is not JSON; is this an "
                    "OpenAI-compatible server?"
                ) from None

        return self._with_retries(send)

    # --- streams -------------------------------------------------------------------------------

    def open_stream(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` and return the open streaming response, once it answered 200."""

        def send() -> httpx.Response:
            request = self._http.build_request("POST", path, json=body)
            try:
                response = self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise self._transport_failure(exc) from None
            if response.status_code >= 400:
                try:
                    response.read()
                finally:
                    response.close()
                self._check(response)
            return response

        return self._with_retries(send)

    def events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        """The JSON payloads of a server-sent-event stream, up to ``[DONE]``. A stream that
        breaks off raises ``_Retryable``, one that just stops raises ``StreamEnded`` (the
        caller knows whether a retry is still safe)."""
        data: list[str] = []
        try:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line.startswith("error:"):  # llama.cpp sends failures as their own field
                    raise RemoteError(self._server_said(line[6:].strip(), "the reply failed"))
                elif not line and data:
                    payload = "\n".join(data)
                    data = []
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

    def _event_json(self, payload: str) -> dict[str, Any]:
        try:
            event = json.loads(payload)
        except ValueError:
            raise RemoteError(
                f"{self.base_url} streamed something that is not JSON: {payload[:60]!r}"
            ) from None
        if isinstance(event, dict) and "error" in event:
            raise RemoteError(self._server_said(json.dumps(event), "the reply failed"))
        return event

    # --- errors and retries --------------------------------------------------------------------

    def _with_retries(self, send: Any) -> Any:
        attempt = 0
        while True:
            try:
                return send()
            except _Retryable as failure:
                if attempt >= self.retries:
                    tries = f" (after {attempt + 1} tries)" if attempt else ""
                    raise RemoteError(f"{failure}{tries}") from None
                time.sleep(backoff_delay(attempt, failure.retry_after))
                attempt += 1

    def _transport_failure(self, exc: httpx.HTTPError) -> _Retryable:
        if isinstance(exc, httpx.ConnectError):
            return _Retryable(
                f"cannot reach the server at {self.base_url} ({_reason(exc)}); start it, or "
                "check the address given with --server"
            )
        if isinstance(exc, httpx.TimeoutException):
            return _Retryable(
                f"the server at {self.base_url} did not answer within {self.timeout:g} s; it "
                "may be overloaded: try again, or raise the timeout"
            )
        return _Retryable(
            f"the connection to {self.base_url} failed ({_reason(exc)}); check the server"
        )

    def _check(self, response: httpx.Response) -> None:
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
        if status >= 500 or status == 408:
            raise _Retryable(
                self._server_said(response.text, f"the server failed on {path} (HTTP {status})")
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
            self._server_said(response.text, f"the server refused {path} (HTTP {status})")
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
    with contextlib.suppress(ValueError):
        detail = json.loads(body)
    for _ in range(3):
        if isinstance(detail, dict):
            detail = detail.get("error") or detail.get("detail") or detail.get("message") or ""
        elif isinstance(detail, list) and detail:
            detail = detail[0].get("msg", detail[0]) if isinstance(detail[0], dict) else detail[0]
    lines = str(detail or "").strip().splitlines()
    return lines[0][:200] if lines else ""
