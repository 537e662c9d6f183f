"""Small misbehaving HTTP servers on 127.0.0.1, in threads of the test process: each answers
the paths it is told to misbehave on in one way (an endless body, a drip, a hang, HTML, bad
JSON, a 500) and, given an upstream, forwards every other request to a real server."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import socketserver
import threading
import zlib
from collections.abc import Iterator

import httpx

ENDLESS_LINE = "endless-line"  # 200, then bytes without a newline, forever
ENDLESS_EVENTS = "endless-events"  # 200, then well-formed events that never finish
DRIP = "drip"  # the whole answer, status line first, one byte at a time
HANG = "hang"  # reads the request, never answers
QUIET = "quiet"  # one event of a reply, then nothing, the connection open
HTML = "html"  # a web page where JSON or an event stream belongs
BAD_JSON = "bad-json"  # JSON that does not parse
ERROR_500 = "500"  # an internal error, its body endless
KINDS = [ENDLESS_LINE, ENDLESS_EVENTS, DRIP, HANG, QUIET, HTML, BAD_JSON, ERROR_500]
SCRIPTED = "scripted"  # 200, then one good event, then the events it was given, then [DONE]
# the upstream's JSON answer with its "chat_template" replaced by the server's template
TEMPLATE_PROPS = "template-props"
DOUBLE_GZIP = "double-gzip"  # 200, a few KB sent as "Content-Encoding: gzip, gzip": 2 GiB of zeros

DRIP_SECONDS = 0.2
_EVENT = b'data: {"choices": [{"text": "a", "index": 0, "finish_reason": null}]}\n\n'


@functools.cache
def double_gzip_body() -> bytes:
    """2 GiB of zeros gzipped, and the result gzipped again: about 3 KB."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    layer = b"".join([*(inner.compress(zeros) for _ in range(2048)), inner.flush()])
    return gzip.compress(layer, 9)


class HostileServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        kind: str,
        upstream: str | None = None,
        paths: tuple[str, ...] = (),
        events: tuple[str, ...] = (),
        template: str = "",
    ):
        """Misbehave as ``kind`` on requests whose path ends with one of ``paths`` (all, when
        none are given), forward the rest to ``upstream``. ``events`` are the JSON texts a
        SCRIPTED server streams; ``template`` the chat template a TEMPLATE_PROPS server names."""
        self.kind = kind
        self.events = events
        self.template = template
        self.upstream = upstream
        self.paths = paths
        self.closing = threading.Event()
        self.misbehaved = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def targets(self, path: str) -> bool:
        return not self.paths or path.split("?")[0].endswith(self.paths)


class _Handler(socketserver.StreamRequestHandler):
    server: HostileServer

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while not self.server.closing.is_set():
                request = self._read_request()
                if request is None:
                    return
                method, path, body = request
                if self.server.targets(path):
                    self.server.misbehaved += 1
                    self._misbehave(path)
                    return  # every misbehaviour ends with the connection
                self._forward(method, path, body)

    def _read_request(self) -> tuple[str, str, bytes] | None:
        line = self.rfile.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        length = 0
        while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        return method, path, self.rfile.read(length)

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _head(self, status: str, content_type: str, length: int | None = None) -> bytes:
        size = f"Content-Length: {length}\r\n" if length is not None else ""
        return (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{size}Connection: close\r\n\r\n"
        ).encode()

    def _misbehave(self, path: str) -> None:
        kind, closing = self.server.kind, self.server.closing
        stream = "completions" in path
        content_type = "text/event-stream" if stream else "application/json"
        if kind == HANG:
            closing.wait()
        elif kind == DRIP:
            answer = self._head("200 OK", content_type) + (_EVENT if stream else b'{"data": []}')
            for byte in answer * 1000:
                if closing.wait(DRIP_SECONDS):
                    return
                self._send(bytes([byte]))
        elif kind in (ENDLESS_LINE, ENDLESS_EVENTS, ERROR_500):
            status = "500 Internal Server Error" if kind == ERROR_500 else "200 OK"
            self._send(self._head(status, content_type))
            piece = _EVENT * 100 if kind == ENDLESS_EVENTS else b"x" * 65536
            while not closing.is_set():
                self._send(piece)
        elif kind == QUIET:
            self._send(self._head("200 OK", content_type) + _EVENT)
            closing.wait()
        elif kind == HTML:
            page = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
            self._send(self._head("200 OK", "text/html", len(page)) + page)
        elif kind == SCRIPTED:
            script = [f"data: {event}\n\n".encode() for event in self.server.events]
            body = _EVENT + b"".join(script) + b"data: [DONE]\n\n"
            self._send(self._head("200 OK", content_type, len(body)) + body)
        elif kind == TEMPLATE_PROPS:
            assert self.server.upstream is not None
            props = httpx.get(self.server.upstream + path, timeout=60).json()
            props["chat_template"] = self.server.template
            body = json.dumps(props).encode()
            self._send(self._head("200 OK", "application/json", len(body)) + body)
        elif kind == DOUBLE_GZIP:
            body = double_gzip_body()
            head = self._head("200 OK", content_type, len(body))
            self._send(head[:-2] + b"Content-Encoding: gzip, gzip\r\n\r\n" + body)
        elif kind == BAD_JSON:
            bad = b"data: {not json\n\n" if stream else b"{not json"
            self._send(self._head("200 OK", content_type, len(bad)) + bad)

    def _forward(self, method: str, path: str, body: bytes) -> None:
        if self.server.upstream is None:
            self._send(self._head("404 Not Found", "application/json", 2) + b"{}")
            return
        answer = httpx.request(
            method,
            self.server.upstream + path,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        data = answer.content
        content_type = answer.headers.get("content-type", "application/json")
        head = self._head(f"{answer.status_code} {answer.reason_phrase}", content_type, len(data))
        self._send(head.replace(b"Connection: close\r\n", b"") + data)


@contextlib.contextmanager
def hostile_server(
    kind: str,
    upstream: str | None = None,
    paths: tuple[str, ...] = (),
    events: tuple[str, ...] = (),
    template: str = "",
) -> Iterator[HostileServer]:
    server = HostileServer(kind, upstream, paths, events, template)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()
