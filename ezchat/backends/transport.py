"""An httpx transport whose every read from the server ends by a deadline, and can be stopped.

httpx's own read timeout bounds each read alone: a server that sends one byte every few
seconds, the status line included, is never timed out. Here a ``Wait`` (set with
``Waits.waiting`` around each blocking step) gives a deadline for everything read on this
thread meanwhile; the socket is read in short slices so that the deadline and the wait's
``stop`` check (the app quitting, a reply being cancelled) are looked at several times a
second even while the server sends nothing.

A passed deadline raises ``WaitExpired`` and a stop ``ReadStopped``; neither is an httpx
error, so they pass through httpx and httpcore unchanged to the code that set the wait.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from . import content_encoding

# How often a read that is waiting for the server looks at its deadline and stop check.
READ_SLICE = 0.2

StopCheck = Callable[[], bool]


class WaitExpired(Exception):
    """A read went past the deadline of the wait it was made in; ``str()`` is the message."""


class ReadStopped(Exception):
    """The wait's stop check asked to stop while the server was being read."""


@dataclass(slots=True)
class Wait:
    deadline: float  # time.monotonic()
    expired: str  # the one-line message when the deadline passes
    stop: StopCheck | None = None

    def check(self) -> float:
        """Seconds left; raises when stopped or out of time."""
        if self.stop is not None and self.stop():
            raise ReadStopped()
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WaitExpired(self.expired)
        return left


class Waits:
    """The wait in force on each thread (at most one: a nested one ends no later than the
    one it is inside, and inherits its stop check)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def current(self) -> Wait | None:
        return getattr(self._local, "wait", None)

    @contextlib.contextmanager
    def waiting(
        self, seconds: float, expired: str, stop: StopCheck | None = None
    ) -> Iterator[Wait]:
        outer = self.current()
        wait = Wait(time.monotonic() + seconds, expired, stop)
        if outer is not None:
            if outer.deadline < wait.deadline:
                wait.deadline, wait.expired = outer.deadline, outer.expired
            wait.stop = wait.stop or outer.stop
        self._local.wait = wait
        try:
            yield wait
        finally:
            self._local.wait = outer

    def pause(self, seconds: float, stop: StopCheck | None = None) -> None:
        """Sleep (a retry's backoff), ending early with ``ReadStopped`` if asked to stop."""
        outer = self.current()
        stop = stop or (outer.stop if outer is not None else None)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if stop is not None and stop():
                raise ReadStopped()
            time.sleep(min(left, READ_SLICE))


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, waits: Waits) -> None:
        self._inner = inner
        self._waits = waits

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = self._waits.current()
        if wait is None:
            return self._inner.read(max_bytes, timeout)
        while True:
            left = wait.check()  # read again each slice: a stream moves its deadline on
            try:
                return self._inner.read(max_bytes, min(left, READ_SLICE))
            except httpcore.ReadTimeout:
                continue

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait = self._waits.current()
        if wait is not None:
            left = wait.check()
            timeout = left if timeout is None else min(timeout, left)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _BoundedStream(
            self._inner.start_tls(ssl_context, server_hostname, timeout), self._waits
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, waits: Waits) -> None:
        self._inner = httpcore.SyncBackend()
        self._waits = waits

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        wait = self._waits.current()
        if wait is not None:
            left = wait.check()
            timeout = left if timeout is None else min(timeout, left)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _BoundedStream(stream, self._waits)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return _BoundedStream(
            self._inner.connect_unix_socket(path, timeout, socket_options), self._waits
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's errors as httpx's, most specific first (what httpx's own transport does)
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    """An answer's body, its ``layers`` of Content-Encoding undone a bounded piece at a time."""

    def __init__(self, stream: Any, layers: list[str]) -> None:
        self._stream = stream
        self._layers = layers

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from content_encoding.decoded(self._stream, self._layers)

    def close(self) -> None:
        with _as_httpx_errors():
            if hasattr(self._stream, "close"):
                self._stream.close()


class BoundedTransport(httpx.BaseTransport):
    """httpx's default transport (a pool of HTTP/1.1 connections), on bounded sockets.
    Proxies from the environment are not used: ezchat's servers are mostly on this machine."""

    def __init__(self, waits: Waits) -> None:
        self._pool = httpcore.ConnectionPool(network_backend=_BoundedBackend(waits))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # ezchat decodes the answer itself, bounded (content_encoding): only what it decodes
        headers = [
            (name, value)
            for name, value in request.headers.raw
            if name.lower() != b"accept-encoding"
        ]
        headers.append((b"Accept-Encoding", content_encoding.ACCEPTED.encode()))
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=headers,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        answer_headers = response.headers
        header = b", ".join(v for k, v in answer_headers if k.lower() == b"content-encoding")
        try:
            layers = content_encoding.encodings(header.decode("latin-1"))
        except httpx.DecodingError:
            with _as_httpx_errors():
                response.close()
            raise
        body = _Body(response.stream, layers)
        if layers:  # httpx gets the answer decoded already
            answer_headers = [
                (name, value)
                for name, value in answer_headers
                if name.lower() not in (b"content-encoding", b"content-length")
            ]
        return httpx.Response(
            status_code=response.status,
            headers=answer_headers,
            stream=body,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
