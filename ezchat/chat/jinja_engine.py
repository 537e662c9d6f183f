"""The Jinja engine for chat templates: llama.cpp's dialect settings, and a time and size bound.

A template is code from a file (a GGUF's metadata, a format file), so each render is bounded:
it stops after ``render_timeout()`` seconds or ``MAX_RENDER_CHARS`` characters with a
``TemplateLimitError``. Template code is Python bytecode, so an exception set asynchronously
in the rendering thread stops even a loop that calls nothing; ``*`` and ``**``, which build a
huge value in one C call, are checked before they run.
"""

from __future__ import annotations

import ctypes
import functools
import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import jinja2
import jinja2.compiler
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import SandboxedEnvironment

from ..errors import TemplateLimitError

DEFAULT_RENDER_SECONDS = 2.0
# Far above any context window (1M tokens is about 4M characters), far below a memory problem.
MAX_RENDER_CHARS = 8_000_000

_render_seconds = DEFAULT_RENDER_SECONDS

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


# --- the bound --------------------------------------------------------------------------------


class _RenderExpired(BaseException):
    """Raised inside a rendering thread when its time is up (BaseException: no template or
    library code catches it on the way out)."""


class _OutputTooLarge(Exception):
    pass


def _bounded(work: Callable[[], T], what: str) -> T:
    """``work()``, stopped once it runs past the render timeout.

    Template code is Python bytecode, so an exception set asynchronously in this thread
    interrupts even a loop that calls nothing; the lock makes sure it is only ever set while
    ``work`` still runs.
    """
    seconds = _render_seconds
    target = threading.get_ident()
    lock = threading.Lock()
    running = [True]

    def expire() -> None:
        with lock:
            if running[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(target), ctypes.py_object(_RenderExpired)
                )

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    try:
        timer.start()
        try:
            return work()
        finally:
            with lock:
                running[0] = False
            timer.cancel()
    except _RenderExpired:
        raise TemplateLimitError(
            f"{what}: rendering the chat template took over {seconds:g} s, so it is refused; "
            "fix the template, or raise the limit with --template-timeout SECONDS or "
            "template_timeout in config.toml"
        ) from None
    except _OutputTooLarge:
        raise TemplateLimitError(
            f"{what}: the chat template's output passed {MAX_RENDER_CHARS:,} characters, so it "
            "is refused; fix the template"
        ) from None


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
    """``a in b`` through ``environment.contains``, so an undefined ``a`` can be refused."""

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
    # '*' and '**' can build a huge string or number in one C call, which no timer stops.
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64 and abs(left) > 1:
                raise _OutputTooLarge
            return left**right
        for sequence, count in ((left, right), (right, left)):
            sized = isinstance(sequence, str | list | tuple) and isinstance(count, int)
            if sized and len(sequence) * count > MAX_RENDER_CHARS:
                raise _OutputTooLarge
        return left * right

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
    )
    env.filters["tojson"] = _tojson
    env.filters["from_json"] = json.loads
    env.filters["safe"] = str  # no autoescape here: Markup would escape what it is joined to
    env.globals["raise_exception"] = _raise_exception
    return env


@functools.lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """The template compiled; raises ``jinja2.TemplateSyntaxError``."""
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
