"""Closing a typed reply that was cut off.

The output grammar lets the model write only JSON of the schema, so a reply cut off (by its
token budget, the end of the context or a stop string) is a prefix of such JSON. ``close_json``
finishes that prefix: an open string is closed where it stopped (a half-written escape left
out), a half-written number loses its unfinished end (``"1."`` becomes ``1``), a half-written
``tr`` becomes ``true`` and a half-written key its whole name (the grammar fixes both), a list
ends after its last whole item, and every field the reply never reached gets an empty value of
its type (``empty_json``). The result parses to values of the declared types.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The values given to fields a cut-off reply never reached.
_EMPTY_SCALARS = {"integer": "0", "number": "0.0", "boolean": "false", "string": '""'}
# The longest start of a JSON number (the grammar allows nothing else where a number goes).
_NUMBER_START = re.compile(r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][-+]?[0-9]*)?")
_SPACE = " \t\r\n"


def empty_json(schema: dict[str, Any]) -> str:
    """The JSON of an empty value of ``schema``: 0, 0.0, false, "", [] or an object of those."""
    kind = schema["type"]
    if kind == "object":
        fields = (f"{json.dumps(key)}: {empty_json(sub)}" for key, sub in _fields(schema))
        return "{" + ", ".join(fields) + "}"
    if kind == "array":
        return "[]"
    return _EMPTY_SCALARS[kind]


def _fields(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(schema["properties"].items())


def close_json(schema: dict[str, Any], text: str) -> str:
    """``text``, the start of JSON of ``schema``, finished to whole JSON of the schema.

    Raises ValueError when ``text`` is not the start of such JSON (the grammar did not
    constrain the reply)."""
    closer = _Closer(text)
    closer.value(schema)
    return "".join(closer.out)


class _Closer:
    """Reads the reply along the schema, copying it to ``out``; once the reply has ended
    (``ended``), every read writes what is missing instead."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: list[str] = []
        self.ended = False

    def at_end(self) -> bool:
        """Copy whitespace; True once nothing of the reply is left."""
        text = self.text
        start = self.pos
        while self.pos < len(text) and text[self.pos] in _SPACE:
            self.pos += 1
        self.out.append(text[start : self.pos])
        if self.pos >= len(text):
            self.ended = True
        return self.ended

    def mismatch(self, wanted: str) -> ValueError:
        return ValueError(
            f"the reply is not JSON of the output type: wanted {wanted} at character "
            f"{self.pos}, found {self.text[self.pos : self.pos + 20]!r}"
        )

    def literal(self, word: str) -> None:
        """Read ``word`` (a bracket, comma, colon or key), finishing it if the reply ends
        inside it."""
        if self.at_end():
            self.out.append(word + " " if word in (",", ":") else word)
            return
        have = self.text[self.pos : self.pos + len(word)]
        if not word.startswith(have):
            raise self.mismatch(repr(word))
        self.pos += len(have)
        self.out.append(word)
        if len(have) < len(word):
            self.ended = True

    def value(self, schema: dict[str, Any]) -> None:
        if self.at_end():
            self.out.append(empty_json(schema))
            return
        kind = schema["type"]
        if kind == "object":
            self.object(schema)
        elif kind == "array":
            self.array(schema["items"])
        elif kind == "string":
            self.string()
        elif kind == "boolean":
            self.literal("true" if self.text[self.pos] == "t" else "false")
        else:
            self.number()

    def object(self, schema: dict[str, Any]) -> None:
        self.literal("{")
        for index, (key, sub) in enumerate(_fields(schema)):
            if index:
                self.literal(",")
            # The grammar writes each key as json.dumps writes it (non-ASCII as \u escapes).
            self.literal(json.dumps(key))
            self.literal(":")
            self.value(sub)
        self.literal("}")

    def array(self, item: dict[str, Any]) -> None:
        self.literal("[")
        count = 0
        while not self.at_end():
            if self.text[self.pos] == "]":
                self.literal("]")
                return
            if count:
                if self.text[self.pos] != ",":
                    raise self.mismatch("',' or ']'")
                self.pos += 1
                comma = len(self.out)
                self.out.append(",")
                if self.at_end():  # cut right after a comma: the list ends at its last item
                    del self.out[comma:]
                    break
            self.value(item)
            count += 1
        self.out.append("]")

    def string(self) -> None:
        self.literal('"')
        text, start = self.text, self.pos
        index = start
        while index < len(text):
            char = text[index]
            if char == '"':
                self.out.append(text[start : index + 1])
                self.pos = index + 1
                return
            if char == "\\":
                length = 6 if text[index + 1 : index + 2] == "u" else 2
                if index + length > len(text):
                    break  # cut inside an escape: leave the escape out
                index += length
                continue
            index += 1
        body = text[start:index]
        if re.search(r"\\u[dD][89abAB][0-9a-fA-F]{2}$", body):
            body = body[:-6]  # half of a surrogate pair is not text
        self.out.append(body + '"')
        self.pos = len(text)
        self.ended = True

    def number(self) -> None:
        match = _NUMBER_START.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        written = match.group()
        if not written:
            raise self.mismatch("a number")
        self.pos = match.end()
        # "-", "2.", "1e" and "1e-" are cut numbers: drop the part that is not a number yet.
        whole = written.rstrip("-+.eE")
        self.out.append(whole if whole not in ("", "-") else "0")
