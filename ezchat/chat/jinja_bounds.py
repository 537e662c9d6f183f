"""Size checks for the template operations that build a huge value in one C call.

A timer stops template code between two bytecodes (``jinja_engine._bounded``), but not inside
one call: ``'x'|center(1500000000)`` allocates 1.5 GB at once, ``[[[[1]]]]|tojson(indent=
400000000)`` 2.8 GB, ``([a]*300)|join`` of an 8M-character ``a`` 2.4 GB, and
``((10**64)**64)**64`` squares a number for seconds. Each such operation is checked here
against the size its result would have before it runs, and refused with ``OutputTooLarge``
past ``MAX_RENDER_CHARS`` (the bound on a render's output, so no result a render could use is
refused). The estimates are upper bounds that cost one walk of the inputs, itself bytecode the
timer can stop.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
import jinja2.compiler
import jinja2.nodes
from jinja2 import filters as jinja_filters
from jinja2.sandbox import SandboxedEnvironment

# Far above any context window (1M tokens is about 4M characters), far below a memory problem.
MAX_RENDER_CHARS = 8_000_000
# A number's size in bits: 30,000 decimal digits, past what Python prints (4,300 digits).
MAX_INT_BITS = 100_000


class OutputTooLarge(Exception):
    """An operation whose result would pass ``MAX_RENDER_CHARS`` (or ``MAX_INT_BITS``)."""


def refuse_above(size: int, limit: int = MAX_RENDER_CHARS) -> None:
    if size > limit:
        raise OutputTooLarge


def text_size(value: Any, indent: int = 0, limit: int = MAX_RENDER_CHARS) -> int:
    """At least the length of ``str(value)`` (or of its JSON with ``indent``), walking
    containers; it stops counting once past ``limit``. A container that holds itself counts
    until the limit, so it is refused, as ``str()`` of it would be nonsense anyway."""
    size = 0
    stack = [(value, 0)]
    while stack and size <= limit:
        item, depth = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            size += len(item) + (2 if depth else 0)  # quoted inside a container
        elif isinstance(item, Mapping):
            size += 2 + len(item) * (4 + indent * (depth + 1))
            for key, entry in item.items():
                stack.append((key, depth + 1))
                stack.append((entry, depth + 1))
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + len(item) * (2 + indent * (depth + 1))
            stack.extend((entry, depth + 1) for entry in item)
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 2
        else:
            size += 24  # a float, None, a bool, an undefined value
    return size


def _indent_length(indent: Any) -> int:
    if isinstance(indent, str):
        return len(indent)
    return indent if isinstance(indent, int) and indent > 0 else 0


# --- operators ------------------------------------------------------------------------------


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` when its result would be too large."""
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            refuse_above(left.bit_length() * right, MAX_INT_BITS)
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            refuse_above(left.bit_length() + right.bit_length(), MAX_INT_BITS)
        for sequence, count in ((left, right), (right, left)):
            sized = isinstance(sequence, str | bytes | list | tuple) and isinstance(count, int)
            if sized and count > 0:
                refuse_above(text_size(sequence) * count)
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            refuse_above(text_size(left) + text_size(right))
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right)


_NUMBERS = re.compile(r"\d+")


def _widest(spec: str) -> int:
    """The largest number written in a format spec (a width or a precision)."""
    return max((int(number) for number in _NUMBERS.findall(spec)), default=0)


def check_percent_format(template: str, values: Any) -> None:
    """``template % values``: each ``%`` field takes at most all of the values, padded to the
    largest width (a ``*`` width comes from the values)."""
    fields = template.count("%")
    if not fields:
        return
    widest = _widest(template)
    if "*" in template and isinstance(values, tuple):
        widest = max([widest, *(abs(item) for item in values if isinstance(item, int))])
    refuse_above(len(template) + fields * (text_size(values) + widest))


def check_concat(parts: Iterable[Any]) -> str:
    """The ``~`` operator, its result's size checked before it is joined."""
    parts = list(parts)
    refuse_above(sum(text_size(part) for part in parts))
    return "".join(map(str, parts))


def check_output(value: Any) -> Any:
    """The environment's ``finalize``: ``{{ value }}`` of a container is one ``str()`` call."""
    if not isinstance(value, str):
        refuse_above(text_size(value))
    return value


# --- str and bytes methods ------------------------------------------------------------------


def check_method(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a str or bytes method whose result would be too large; the arguments
    to call it with (an iterable to join is made a list, to be measured)."""
    target = getattr(method, "__wrapped__", method)  # the sandbox's wrapper of str.format
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str | bytes | bytearray):
        return args
    name = getattr(target, "__name__", "")
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill") and isinstance(first, int):
        refuse_above(first)
    elif name == "expandtabs":
        size = first if isinstance(first, int) else kwargs.get("tabsize", 8)
        tab = "\t" if isinstance(owner, str) else b"\t"
        if isinstance(size, int):
            refuse_above(len(owner) + owner.count(tab) * size)  # type: ignore[arg-type]
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args:
        items = list(first)
        refuse_above(text_size(items) + len(items) * len(owner))
        return (items, *args[1:])
    elif name == "translate":
        table = first.values() if isinstance(first, Mapping) else []
        longest = max((text_size(entry) for entry in table), default=1)
        refuse_above(len(owner) * longest)
    elif name in ("format", "format_map") and isinstance(owner, str):
        _check_brace_format(owner, [*args, *kwargs.values()])
    return args


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return
    found = len(text) + 1 if not old else text.count(old)
    refuse_above(len(text) + found * len(new))


def _check_brace_format(template: str, values: list[Any]) -> None:
    """``template.format(*values)``: each field takes at most the largest value, padded to the
    largest width (a nested ``{}`` width comes from the values)."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # format itself refuses it
    widest = _widest(template)
    if "{" in "".join(spec or "" for _, _, spec, _ in fields):
        widest = max([widest, *(abs(value) for value in values if isinstance(value, int))])
    count = sum(1 for _, name, _, _ in fields if name is not None)
    refuse_above(len(template) + count * (text_size(values) + widest))


# --- filters --------------------------------------------------------------------------------


def _center(value: Any, width: int = 80) -> str:
    if isinstance(width, int):
        refuse_above(width)
    return jinja_filters.do_center(value, width)


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    refuse_above(len(text) + (text.count("\n") + 1) * _indent_length(width))
    return jinja_filters.do_indent(value, width, first, blank)


@jinja2.pass_environment
def _wordwrap(env: jinja2.Environment, value: str, width: int = 79, *args: Any, **kw: Any) -> str:
    wrapstring = kw.get("wrapstring", args[1] if len(args) > 1 else None) or env.newline_sequence
    lines = len(value) // max(width, 1) + value.count("\n") + 1 if isinstance(width, int) else 1
    refuse_above(len(value) + lines * text_size(wrapstring))
    return jinja_filters.do_wordwrap(env, value, width, *args, **kw)


@jinja2.pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    refuse_above(text_size(items) + len(items) * text_size(d))
    return jinja_filters.do_join(eval_ctx, items, d, attribute)


@jinja2.pass_eval_context
def _replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: int | None = None) -> str:
    _check_replace(str(value), str(old), str(new))
    return jinja_filters.do_replace(eval_ctx, value, old, new, count)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    check_percent_format(str(value), kwargs or args)
    return jinja_filters.do_format(value, *args, **kwargs)


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None and isinstance(linecount, int):
        refuse_above(linecount)
    return jinja_filters.do_batch(value, linecount, fill_with)


def _sized(convert: Callable[..., Any]) -> Callable[..., Any]:
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        refuse_above(text_size(value))
        return convert(value, *args, **kwargs)

    return checked


def json_size(value: Any, indent: Any, ensure_ascii: bool) -> int:
    """At least the length of ``json.dumps(value, indent=indent)``."""
    size = text_size(value, _indent_length(indent))
    return size * 6 if ensure_ascii else size  # \\uXXXX


BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "join": _join,
    "replace": _replace,
    "format": _format,
    "batch": _batch,
    "string": _sized(jinja_filters.FILTERS["string"]),
    "pprint": _sized(jinja_filters.do_pprint),
}


# --- the environment ------------------------------------------------------------------------


class BoundedCodeGenerator(jinja2.compiler.CodeGenerator):
    """``a ~ b`` through ``environment.concat``, so its size is checked, and nothing evaluated
    while compiling: Jinja's constant folding would run ``'a b'|center(3000000)|wordwrap(2)``
    in the compile, and the compile of a cached template outside any render."""

    def _output_child_to_const(self, node: Any, frame: Any, finalize: Any) -> str:
        if isinstance(node, jinja2.nodes.TemplateData):  # the template's own text, as it is
            return super()._output_child_to_const(node, frame, finalize)
        raise jinja2.nodes.Impossible()

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: jinja2.compiler.Frame) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            return super().visit_Concat(node, frame)
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose operations are size-checked before they run (run its compiles and
    renders inside ``jinja_limits.bounded`` for the time and memory bound)."""

    code_generator_class = BoundedCodeGenerator
    # These can build a huge string or number in one C call, which no timer stops.
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=check_output, optimized=False, **options)
        self.filters.update(BOUNDED_FILTERS)
        self.globals.pop("lipsum", None)  # a loop in one call; no template writes filler text

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        args = check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    @staticmethod
    def concat(parts: tuple[Any, ...]) -> str:
        return check_concat(parts)


def generate_text(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """``template.render(variables)``, refused once its output passes ``MAX_RENDER_CHARS``."""
    pieces: list[str] = []
    size = 0
    for piece in template.generate(variables):
        size += len(piece)
        refuse_above(size)
        pieces.append(piece)
    return "".join(pieces)
