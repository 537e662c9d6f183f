"""The Jinja engine for chat templates: llama.cpp's dialect settings, and a time and size bound.

A template is code from a file (a GGUF's metadata, a format file), so its compile and each
render are bounded: they stop after ``render_timeout()`` seconds, once the process has grown by
``render_memory_mb()`` MiB, or at ``MAX_RENDER_CHARS`` characters, with a
``TemplateLimitError``. Template code is Python bytecode, so an exception set asynchronously
in the working thread stops even a loop that calls nothing; the operations that build a huge
value in one C call are checked before they run (``jinja_bounds``). Nothing is evaluated while
compiling: Jinja's constant folding would run ``'a b'|center(3000000)|wordwrap(2)`` then.
"""

from __future__ import annotations

import ctypes
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import jinja2
import jinja2.compiler
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import SandboxedEnvironment

from ..errors import TemplateLimitError
from .jinja_bounds import (
    BOUNDED_FILTERS,
    MAX_INT_BITS,
    MAX_RENDER_CHARS,
    check_binop,
    check_concat,
    check_method,
    check_output,
    json_size,
    refuse_above,
)
from .jinja_bounds import OutputTooLarge as _OutputTooLarge

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


class ChatTemplateError(Exception):
    """A chat template called ``raise_exception``; usually it rejects a system message."""


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


class _RenderExpired(BaseException):
    """Raised inside a rendering thread when its time is up (BaseException: no template or
    library code catches it on the way out)."""


def _bounded(work: Callable[[], T], what: str) -> T:
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
                            ctypes.c_ulong(target), ctypes.py_object(_RenderExpired)
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
    except _RenderExpired:
        if cause == ["memory"]:
            raise TemplateLimitError(_memory_message(what, megabytes)) from None
        raise TemplateLimitError(
            f"{what}: the chat template ran for over {seconds:g} s, so it is refused; "
            "fix the template, or raise the limit with --template-timeout SECONDS or "
            "template_timeout in config.toml"
        ) from None
    except MemoryError:
        raise TemplateLimitError(_memory_message(what, megabytes)) from None
    except _OutputTooLarge:
        raise TemplateLimitError(
            f"{what}: the chat template builds a value of over {MAX_RENDER_CHARS:,} characters "
            f"(or a number of over {MAX_INT_BITS:,} bits), so it is refused; fix the template"
        ) from None


def _memory_message(what: str, megabytes: float) -> str:
    return (
        f"{what}: the chat template took over {megabytes:g} MiB of memory, so it is refused; "
        "fix the template, or raise the limit with template_memory_mb in config.toml"
    )


# --- the environment --------------------------------------------------------------------------


class _GenerationTag(jinja2.ext.Extension):
    """HF's ``{% generation %}`` marks training targets; for inference it renders as-is."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> list[jinja2.nodes.Node]:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class _LenientUndefined(jinja2.ChainableUndefined):
    """llama.cpp's undefined joins a string as nothing (``suffix + functions`` with no
    ``functions``), and its fields are undefined too (``messages[0].role`` on a new, empty
    chat, which Qwen's and Llama 3's templates read), where Python's Jinja raises."""

    def __add__(self, other: Any) -> Any:
        return other if isinstance(other, str) else super().__add__(other)

    def __radd__(self, other: Any) -> Any:
        return other if isinstance(other, str) else super().__radd__(other)


class _CodeGenerator(jinja2.compiler.CodeGenerator):
    """``a in b`` through ``environment.contains``, so an undefined ``a`` can be refused;
    ``a ~ b`` through ``environment.concat``, so its size is checked; and no output evaluated
    while compiling, outside the bound."""

    def _output_child_to_const(self, node: Any, frame: Any, finalize: Any) -> str:
        raise jinja2.nodes.Impossible()

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: jinja2.compiler.Frame) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            return super().visit_Concat(node, frame)
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Compare(self, node: jinja2.nodes.Compare, frame: jinja2.compiler.Frame) -> None:
        if len(node.ops) != 1 or node.ops[0].op not in ("in", "notin"):
            return super().visit_Compare(node, frame)
        self.write("(not " if node.ops[0].op == "notin" else "(")
        self.write("environment.contains(")
        self.visit(node.ops[0].expr, frame)
        self.write(", ")
        self.visit(node.expr, frame)
        self.write("))")


# Mutable, as llama.cpp's engine is: templates append to lists they build (Kimi K2).
class _Environment(SandboxedEnvironment):
    code_generator_class = _CodeGenerator
    # These can build a huge string or number in one C call, which no timer stops.
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        args = check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    @staticmethod
    def concat(parts: tuple[Any, ...]) -> str:
        return check_concat(parts)

    def contains(self, container: Any, item: Any) -> bool:
        # llama.cpp refuses an undefined value looked up ``in`` something (Gemma 4 on an
        # empty chat), where ``'x' in undefined`` and every other use of one pass
        if isinstance(item, jinja2.Undefined):
            raise ChatTemplateError("Cannot perform operation in on undefined values")
        return item in container


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _plain(value: Any) -> Any:
    """A value with Jinja's lazy sequences (``map``, ``select``) made lists, as llama.cpp's
    arrays are."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "__next__"):
        return [_plain(item) for item in value]
    return value


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    value = _plain(value)
    _mark_used_deep(value)
    refuse_above(json_size(value, indent, ensure_ascii))
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@functools.cache
def _environment() -> _Environment:
    # llama.cpp's lexer defaults, which are also transformers' apply_chat_template settings.
    env = _Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=_LenientUndefined,
        extensions=[jinja2.ext.loopcontrols, _GenerationTag],
        finalize=check_output,
        optimized=False,
    )
    env.filters.update(BOUNDED_FILTERS)
    env.globals.pop("lipsum", None)  # a loop in one call; no chat template writes filler text
    env.filters["tojson"] = _tojson
    env.filters["from_json"] = json.loads
    env.filters["safe"] = str  # no autoescape here: Markup would escape what it is joined to
    env.globals["raise_exception"] = _raise_exception
    return env


def compile_template(source: str, what: str = "chat template") -> jinja2.Template:
    """The template compiled, bounded as a render is; raises ``jinja2.TemplateSyntaxError``."""
    return _bounded(lambda: _compiled(source), what)


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def _run(template: jinja2.Template, context: Mapping[str, Any], now: datetime | None) -> str:
    moment = now or datetime.now()
    variables = {
        # llama.cpp's extra context: Llama 3.x templates print the date from these.
        "datetime": moment.strftime("%b %d %Y"),
        "date_string": moment.strftime("%d %b %Y"),
        "strftime_now": moment.strftime,
        **context,
    }
    pieces: list[str] = []
    size = 0
    for piece in template.generate(variables):
        size += len(piece)
        if size > MAX_RENDER_CHARS:
            raise _OutputTooLarge
        pieces.append(piece)
    return "".join(pieces)


# --- values that record how a template used them (llama.cpp's stats) ------------------------------


class _Tracked(dict):
    """A dict that records which keys the template read (llama.cpp's ``stats.used``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.used: set[str] = set()

    def __getitem__(self, key: Any) -> Any:
        self.used.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.used.add(key)
        return super().get(key, default)

    # Reading every entry uses every key (llama.cpp marks an iterated object's values used).
    def items(self) -> Any:
        self.used.update(self.keys())
        return super().items()

    def values(self) -> Any:
        self.used.update(self.keys())
        return super().values()


class _TrackedList(list):
    """Content given as a list of parts, recording whether the template read it as one."""

    used_as_list = False

    def __iter__(self) -> Any:
        self.used_as_list = True
        return super().__iter__()

    def __getitem__(self, index: Any) -> Any:
        self.used_as_list = True
        return super().__getitem__(index)


class _TrackedText(str):
    """Content that records whether the template treated it as a list of parts."""

    used_as_list = False

    def __getitem__(self, key: Any) -> Any:
        self.used_as_list = True
        return super().__getitem__(key)

    def __iter__(self) -> Any:
        self.used_as_list = True
        return super().__iter__()


def _mark_used_deep(value: Any) -> None:
    if isinstance(value, _Tracked):
        value.used.update(value.keys())
        for item in dict.values(value):
            _mark_used_deep(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _mark_used_deep(item)
