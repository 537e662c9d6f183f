"""Typed output: ``output_type={"age": "int", "units": "str"}`` becomes a JSON schema, the schema
becomes a GBNF grammar, and the grammar constrains sampling so the reply can only be JSON of
that shape. The reply is then parsed into Python values of the declared types.

The type is enforced by the grammar, never guessed afterwards: a reply that does not parse
(generation cut off by ``max_len_tokens`` before the JSON closed) is an error, not a best effort.
"""

from __future__ import annotations

import json
import types
from typing import Any

from ..errors import EzChatError, GenerationError
from ..sampling import json_schema_grammar

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
SUPPORTED = "int, float, bool, str, list[T] or list[T, N] (at most N), or a dict of fields"


class OutputTypeError(EzChatError, ValueError):
    """An ``output_type`` that names no supported type."""


class TypedOutputError(GenerationError):
    """A constrained reply that is not complete JSON (it was cut off)."""


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
            return {"type": _SCALARS[name][0]}
        if name.startswith("list[") and name.endswith("]"):
            item, _, most = name[5:-1].partition(",")
            return _array(item, most or None, where)
    label = f" for {where!r}" if where else ""
    raise OutputTypeError(f"unknown output type {spec!r}{label}: use {SUPPORTED}")


def _array(item: Any, most: Any, where: str) -> dict[str, Any]:
    """A list of ``item``; ``most`` bounds its length (small models may never end a list)."""
    schema = {"type": "array", "items": _schema(item, f"{where}[]")}
    if most is not None:
        try:
            count = int(most)
        except (TypeError, ValueError):
            count = 0
        if count < 1 or isinstance(most, bool):
            raise OutputTypeError(
                f"the length of list {where or 'output'} must be a whole number >= 1, not {most!r}"
            )
        schema["maxItems"] = count
    return schema


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
    """A parsed ``output_type``: its JSON schema, its GBNF grammar and a parser for replies."""

    def __init__(self, spec: Any) -> None:
        if isinstance(spec, OutputType):
            spec = spec.spec
        self.spec = spec
        self.schema = _schema(spec, "")
        order = list(self.schema.get("properties", {}))
        self.grammar: str = json_schema_grammar(json.dumps(self.schema), order)

    @classmethod
    def from_json(cls, text: str) -> OutputType:
        """An output type written as JSON, as on the command line: ``{"age": "int"}``."""
        try:
            spec = json.loads(text)
        except json.JSONDecodeError:
            spec = text  # a bare type name such as int or list[str]
        return cls(spec)

    def parse(self, text: str, stop_reason: str = "") -> Any:
        """The reply as Python values; raises TypedOutputError if it is not complete JSON."""
        try:
            value = json.loads(text, strict=False)  # strings may hold raw newlines
        except json.JSONDecodeError:
            why = (
                " (generation stopped at max_len_tokens; raise it)"
                if stop_reason in ("length", "context_full")
                else ""
            )
            raise TypedOutputError(f"the reply is not complete JSON{why}: {text[:80]!r}") from None
        return _convert(self.schema, value, "")

    def __repr__(self) -> str:
        return f"OutputType({self.spec!r})"
