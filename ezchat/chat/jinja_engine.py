"""The Jinja engine for chat templates: llama.cpp's dialect settings on a bounded sandbox.

A template is code from a file (a GGUF's metadata, a format file), so its compile and each
render are bounded in time and memory (``jinja_limits``), and what one call could build at
once is checked before it runs (``jinja_bounds``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jinja2
import jinja2.compiler
import jinja2.ext
import jinja2.nodes

from .jinja_bounds import (
    MAX_RENDER_CHARS,
    BoundedCodeGenerator,
    BoundedEnvironment,
    generate_text,
    json_size,
    refuse_above,
)
from .jinja_bounds import OutputTooLarge as _OutputTooLarge
from .jinja_limits import (
    DEFAULT_RENDER_MEMORY_MB,
    DEFAULT_RENDER_SECONDS,
    render_memory_mb,
    render_timeout,
    set_render_memory,
    set_render_timeout,
)
from .jinja_limits import RenderExpired as _RenderExpired
from .jinja_limits import bounded as _bounded

__all__ = [
    "DEFAULT_RENDER_MEMORY_MB",
    "DEFAULT_RENDER_SECONDS",
    "MAX_RENDER_CHARS",
    "ChatTemplateError",
    "compile_template",
    "render_memory_mb",
    "render_timeout",
    "set_render_memory",
    "set_render_timeout",
    "_OutputTooLarge",
    "_RenderExpired",
    "_bounded",
]


class ChatTemplateError(Exception):
    """A chat template called ``raise_exception``; usually it rejects a system message."""


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


class _CodeGenerator(BoundedCodeGenerator):
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
class _Environment(BoundedEnvironment):
    code_generator_class = _CodeGenerator

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
    )
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
    return generate_text(template, variables)


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
