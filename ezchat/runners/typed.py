"""Typed output: ``output_type={"age": "int", "units": "str"}`` becomes a JSON schema, the schema
becomes a GBNF grammar, and the grammar constrains sampling so the reply can only be JSON of
that shape. The reply is then parsed into Python values of the declared types.

Every reply gives values of the declared types: strings are bounded (``DEFAULT_MAX_CHARS``, or
``str[N]``), the reply's token budget is the longest JSON the schema allows
(``OutputType.token_budget``), and a reply cut off anyway (the context ended, an unbounded list
ran on, characters that take several tokens) is closed to JSON of the schema
(``jsonclose.close_json``) and marked ``cut_off``.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass
from typing import Any

from ..engine.sampling import json_schema_grammar
from ..errors import EzChatError, GenerationError
from .jsonclose import close_json

# Names a user may write for each JSON type, and the Python type of its parsed value.
_SCALARS: dict[str, tuple[str, type]] = {
    "int": ("integer", int),
    "integer": ("integer", int),
    "float": ("number", float),
    "number": ("number", float),
    "bool": ("boolean", bool),
    "boolean": ("boolean", bool),
    "str": ("string", str),
    "string": ("string", str),
}
_PYTHON_SCALARS = {int: "int", float: "float", bool: "bool", str: "str"}
SUPPORTED = (
    "int, float, bool, str or str[N] (at most N characters), list[T] or list[T, N] (at most N "
    "items), or a dict of fields"
)

# A string field holds at most this many characters unless its type says str[N]: a small model
# may never end a string by itself, and the bound is what lets the token budget cover a reply.
DEFAULT_MAX_CHARS = 256

# The longest text llama-cpp-python's grammar rules (llama_grammar.PRIMITIVE_RULES) let each
# scalar be, with the one optional space (SPACE_RULE) after it: integers have at most 16 digits,
# numbers 16 before the point, 16 after it and 16 in the exponent.
_SPACE = 1
_LONGEST_SCALAR = {
    "integer": len("-") + 16 + _SPACE,
    "number": len("-") + 16 + len(".") + 16 + len("e-") + 16 + _SPACE,
    "boolean": len("false") + _SPACE,
}
# Why a reply stopped when the model did not end it itself.
_CUT_REASONS = ("length", "context_full", "cancelled")


class OutputTypeError(EzChatError, ValueError):
    """An ``output_type`` that names no supported type."""


class TypedOutputError(GenerationError):
    """A constrained reply that is not JSON of the output type, even closed (the grammar did
    not constrain it)."""


@dataclass(frozen=True, slots=True)
class TypedReply:
    """A reply read as values of the output type. ``cut_off``: the reply stopped before its
    JSON was whole (token budget, end of the context, a stop string) and ``json`` is its text
    closed to JSON of the schema (see jsonclose)."""

    value: Any
    cut_off: bool
    json: str


def _split_top_level(inner: str) -> tuple[str, str | None]:
    """``"list[int, 2], 3"`` -> ``("list[int, 2]", "3")``: the item type and the count after
    the last comma outside brackets (None when there is none)."""
    depth = 0
    for index in range(len(inner) - 1, -1, -1):
        char = inner[index]
        if char == "]":
            depth += 1
        elif char == "[":
            depth -= 1
        elif char == "," and depth == 0:
            return inner[:index], inner[index + 1 :]
    return inner, None


def _schema(spec: Any, where: str) -> dict[str, Any]:
    """The JSON schema of one type spec; ``where`` names it in error messages."""
    if isinstance(spec, type) and spec in _PYTHON_SCALARS:
        spec = _PYTHON_SCALARS[spec]
    if isinstance(spec, types.GenericAlias) and spec.__origin__ is list and spec.__args__:
        return {"type": "array", "items": _schema(spec.__args__[0], f"{where}[]")}
    if isinstance(spec, list) and len(spec) in (1, 2):
        return _array(spec[0], spec[1] if len(spec) == 2 else None, where)
    if isinstance(spec, dict):
        if not spec:
            raise OutputTypeError(f"output type {where or 'dict'} has no fields; name at least one")
        properties = {}
        for key, value in spec.items():
            if not isinstance(key, str):
                raise OutputTypeError(f"output type field names must be strings, not {key!r}")
            properties[key] = _schema(value, f"{where}.{key}" if where else key)
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
    if isinstance(spec, str):
        name = spec.strip().lower().replace(" ", "")
        if name in _SCALARS:
            kind = _SCALARS[name][0]
            if kind == "string":
                return {"type": "string", "maxLength": DEFAULT_MAX_CHARS}
            return {"type": kind}
        bounded = re.fullmatch(r"(str|string)\[(.*)\]", name)
        if bounded:
            return {"type": "string", "maxLength": _count(bounded[2], "characters", where)}
        if name.startswith("list[") and name.endswith("]"):
            item, most = _split_top_level(name[5:-1])
            return _array(item, most, where)
    label = f" for {where!r}" if where else ""
    raise OutputTypeError(f"unknown output type {spec!r}{label}: use {SUPPORTED}")


def _count(most: Any, what: str, where: str) -> int:
    """``most`` as a whole number >= 1 (a bound on a list's items or a string's characters)."""
    try:
        count = int(most)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or isinstance(most, bool):
        raise OutputTypeError(
            f"the most {what} of {where or 'the output'} must be a whole number >= 1, not {most!r}"
        )
    return count


def _array(item: Any, most: Any, where: str) -> dict[str, Any]:
    """A list of ``item``; ``most`` bounds its length (small models may never end a list)."""
    schema = {"type": "array", "items": _schema(item, f"{where}[]")}
    if most is not None:
        schema["maxItems"] = _count(most, "items", where)
    return schema


def longest_json(schema: dict[str, Any]) -> tuple[int, bool]:
    """The most characters the grammar lets JSON of ``schema`` have, and whether that is all:
    False when a list without a bound is in it (counted then as empty)."""
    kind = schema["type"]
    if kind == "object":
        fields = schema["properties"]
        # "{" space, then per field: key space ":" space value, "," space between, "}" space
        total, bounded = 2 * (1 + _SPACE) + (len(fields) - 1) * (1 + _SPACE), True
        for key, sub in fields.items():
            chars, sub_bounded = longest_json(sub)
            total += len(json.dumps(key)) + _SPACE + 1 + _SPACE + chars
            bounded = bounded and sub_bounded
        return total, bounded
    if kind == "array":
        brackets = 2 * (1 + _SPACE)
        most = schema.get("maxItems")
        if most is None:
            return brackets, False
        chars, bounded = longest_json(schema["items"])
        return brackets + most * chars + (most - 1) * (1 + _SPACE), bounded
    if kind == "string":
        # maxLength counts the value's characters; an escape ("\n") is one of them but more
        # characters of JSON: a reply full of them may outrun the budget, and is closed then
        return 1 + schema["maxLength"] + 1 + _SPACE, True
    return _LONGEST_SCALAR[kind], True


def _convert(schema: dict[str, Any], value: Any, where: str) -> Any:
    """``value`` from ``json.loads`` as the Python type the schema declares."""
    kind = schema["type"]
    if kind == "object" and isinstance(value, dict) and value.keys() == schema["properties"].keys():
        return {
            key: _convert(sub, value[key], f"{where}.{key}" if where else key)
            for key, sub in schema["properties"].items()
        }
    if kind == "array" and isinstance(value, list):
        return [_convert(schema["items"], item, f"{where}[]") for item in value]
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    raise TypedOutputError(f"the reply's {where or 'value'} is {value!r}, not of type {kind}")


class OutputType:
    """A parsed ``output_type``: its JSON schema, its GBNF grammar, the token budget of a reply
    and a reader for replies."""

    def __init__(self, spec: Any) -> None:
        if isinstance(spec, OutputType):
            spec = spec.spec
        self.spec = spec
        self.schema = _schema(spec, "")
        order = list(self.schema.get("properties", {}))
        self.grammar: str = json_schema_grammar(json.dumps(self.schema), order)
        self.longest, self.bounded = longest_json(self.schema)

    @classmethod
    def from_json(cls, text: str) -> OutputType:
        """An output type written as JSON, as on the command line: ``{"age": "int"}``."""
        try:
            spec = json.loads(text)
        except json.JSONDecodeError:
            spec = text  # a bare type name such as int or list[str]
        return cls(spec)

    def token_budget(self, max_len_tokens: int) -> int:
        """How many tokens a reply may take: the longest JSON the type allows, at one token per
        character (every token is at least one character of ASCII text), whatever the
        sampler's ``max_len_tokens``. A type with an unbounded list gets ``max_len_tokens``
        (when that is more than the rest of the type needs)."""
        if self.bounded:
            return self.longest
        return max(self.longest, max_len_tokens)

    def parse(self, text: str) -> Any:
        """Whole JSON of the type as Python values; TypedOutputError for anything else."""
        try:
            value = json.loads(text, strict=False)  # strings may hold raw newlines
        except json.JSONDecodeError:
            raise TypedOutputError(f"the reply is not complete JSON: {text[:80]!r}") from None
        return _convert(self.schema, value, "")

    def read(self, text: str, stop_reason: str = "") -> TypedReply:
        """The reply as values of the type; a reply cut off before its JSON was whole is
        closed to JSON of the type (``cut_off``) instead of failing."""
        try:
            value = self.parse(text)
        except TypedOutputError:
            pass
        else:
            # A bare number that hit the limit parses, but it may have had more digits.
            number = self.schema["type"] in ("integer", "number")
            return TypedReply(value, number and stop_reason in _CUT_REASONS, text)
        try:
            closed = close_json(self.schema, text)
        except ValueError as exc:
            raise TypedOutputError(str(exc)) from None
        return TypedReply(self.parse(closed), True, closed)

    def __repr__(self) -> str:
        return f"OutputType({self.spec!r})"
