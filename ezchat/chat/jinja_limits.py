"""The time and memory bound on a template's compile and renders.

A template is code from a file (a GGUF's metadata, a format file, a batch template), so each
compile and render stops after ``render_timeout()`` seconds, or once the process has grown by
``render_memory_mb()`` MiB, with a ``TemplateLimitError``. Template code is Python bytecode,
so an exception set asynchronously in the working thread stops even a loop that calls nothing;
what one C call could build at once is checked before it runs (``jinja_bounds``).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import TemplateLimitError
from .jinja_bounds import MAX_INT_BITS, MAX_RENDER_CHARS, OutputTooLarge

DEFAULT_RENDER_SECONDS = 2.0
# How much one compile or render may grow the process's memory: a chat's prompt takes a few
# times its text (32 MB at most for MAX_RENDER_CHARS), so this is only ever reached by a
# template that builds values in a loop.
DEFAULT_RENDER_MEMORY_MB = 512
# How often the watcher looks at the memory: at a few GB/s, 10 ms is some tens of MB.
_WATCH_SECONDS = 0.01

_render_seconds = DEFAULT_RENDER_SECONDS
_render_memory_mb = DEFAULT_RENDER_MEMORY_MB
_inside = threading.local()

T = TypeVar("T")


def set_render_timeout(seconds: float) -> None:
    """How long one render of a chat template may take (config ``template_timeout``)."""
    global _render_seconds
    if not seconds > 0:
        raise ValueError(
            f"the template timeout must be a positive number of seconds, not {seconds}"
        )
    _render_seconds = float(seconds)


def render_timeout() -> float:
    return _render_seconds


def set_render_memory(megabytes: float) -> None:
    """How many MiB one compile or render of a chat template may add to the process's memory
    (config ``template_memory_mb``)."""
    global _render_memory_mb
    if not megabytes > 0:
        raise ValueError(
            f"the template memory limit must be a positive number of MiB, not {megabytes}"
        )
    _render_memory_mb = float(megabytes)


def render_memory_mb() -> float:
    return _render_memory_mb


def _private_bytes() -> int | None:
    """The process's resident memory that is not a file (the model's weights are mapped from
    one and come and go): /proc/self/statm's resident minus shared, Linux only."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            fields = statm.read().split()
        return (int(fields[1]) - int(fields[2])) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


_PAGE = 4096


# --- the bound --------------------------------------------------------------------------------


class RenderExpired(BaseException):
    """Raised inside a rendering thread when its time is up (BaseException: no template or
    library code catches it on the way out)."""


def bounded(work: Callable[[], T], what: str) -> T:
    """``work()``, stopped once it runs past the render timeout or grows the process's memory
    past the render memory limit.

    Template code is Python bytecode, so an exception set asynchronously in this thread
    interrupts even a loop that calls nothing; a watcher thread sets it, and the lock makes
    sure it is only ever set while ``work`` still runs. A bounded call inside another (a
    compile inside a probe) runs under the outer one's watcher.
    """
    if getattr(_inside, "bounded", False):
        return work()
    seconds, megabytes = _render_seconds, _render_memory_mb
    target = threading.get_ident()
    lock = threading.Lock()
    finished = threading.Event()
    running = [True]
    cause: list[str] = []

    def watch() -> None:
        start = _private_bytes()
        deadline = time.monotonic() + seconds
        while not finished.wait(min(_WATCH_SECONDS, max(0.0, deadline - time.monotonic()))):
            now = _private_bytes()
            grown = start is not None and now is not None and now - start > megabytes * 2**20
            if grown or time.monotonic() >= deadline:
                with lock:
                    if running[0]:
                        cause.append("memory" if grown else "time")
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(target), ctypes.py_object(RenderExpired)
                        )
                return

    watcher = threading.Thread(target=watch, name="template-watch", daemon=True)
    _inside.bounded = True
    try:
        watcher.start()
        try:
            return work()
        finally:
            with lock:
                running[0] = False
            finished.set()
            _inside.bounded = False
    except RenderExpired:
        if cause == ["memory"]:
            raise TemplateLimitError(_memory_message(what, megabytes)) from None
        raise TemplateLimitError(
            f"{what}: the template ran for over {seconds:g} s, so it is refused; "
            "fix the template, or raise the limit with --template-timeout SECONDS or "
            "template_timeout in config.toml"
        ) from None
    except MemoryError:
        raise TemplateLimitError(_memory_message(what, megabytes)) from None
    except OutputTooLarge:
        raise TemplateLimitError(
            f"{what}: the template builds a value of over {MAX_RENDER_CHARS:,} characters "
            f"(or a number of over {MAX_INT_BITS:,} bits), so it is refused; fix the template"
        ) from None


def _memory_message(what: str, megabytes: float) -> str:
    return (
        f"{what}: the template took over {megabytes:g} MiB of memory, so it is refused; "
        "fix the template, or raise the limit with template_memory_mb in config.toml"
    )
