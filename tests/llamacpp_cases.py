"""llama.cpp's own chat-template cases, read from the vendored sources at test time.

``tests/test-chat-template.cpp`` holds a conversation and a list of ``TestCase`` initializers
(name, template, expected output, expected Jinja output, bos, eos, supported with Jinja, extra
turns). This reads them with a small tokenizer for the C++ literals they use (string literals,
``U8C(...)``, braces, ``true``/``false``, comments), so that no expected string is copied into
this repository.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import llama_tools  # noqa: E402

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<punct>[{}(),])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


@dataclass
class TemplateCase:
    name: str
    template: str
    expected: str
    bos_token: str
    eos_token: str
    conversation: list[dict[str, str]]


def source_file() -> Path:
    return llama_tools.source_dir() / "tests" / "test-chat-template.cpp"


def templates_dir() -> Path:
    return llama_tools.source_dir() / "models" / "templates"


def _unescape(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], body)


def _tokens(text: str) -> list[str | tuple[str]]:
    """Punctuation and words as str; decoded string literals as 1-tuples."""
    tokens: list[str | tuple[str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(
                f"test-chat-template.cpp: cannot read {text[position : position + 40]!r}"
            )
        position = match.end()
        kind = match.lastgroup
        if kind == "string":
            decoded = _unescape(match.group())
            # Adjacent literals concatenate, as in C++.
            if tokens and isinstance(tokens[-1], tuple):
                tokens[-1] = (tokens[-1][0] + decoded,)
            else:
                tokens.append((decoded,))
        elif kind in ("word", "punct"):
            tokens.append(match.group())
    return tokens


def _parse_braces(tokens: list, start: int) -> tuple[list, int]:
    """The items of a ``{...}`` initializer starting at ``tokens[start] == '{'``."""
    assert tokens[start] == "{"
    items: list = []
    index = start + 1
    while tokens[index] != "}":
        token = tokens[index]
        if token == "{":
            item, index = _parse_braces(tokens, index)
            items.append(item)
        elif token == "U8C":  # U8C("...") is a UTF-8 literal; the file is UTF-8 already
            items.append(tokens[index + 2][0])
            index += 4
        elif isinstance(token, tuple):
            items.append(token[0])
            index += 1
        elif token in ("true", "false"):
            items.append(token == "true")
            index += 1
        elif token == ",":
            index += 1
        else:
            raise ValueError(f"test-chat-template.cpp: unexpected {token!r} in an initializer")
    return items, index + 1


def _initializer(text: str, declaration: str) -> list:
    start = text.index(declaration) + len(declaration)
    tokens = _tokens(text[start : text.index("};", start) + 1])
    return _parse_braces(tokens, 0)[0]


def jinja_cases() -> list[TemplateCase]:
    """The cases llama.cpp renders with its Jinja engine (``supported_with_jinja``)."""
    text = source_file().read_text(encoding="utf-8")
    conversation = [
        {"role": role, "content": content}
        for role, content in _initializer(text, "std::vector<llama_chat_message> conversation")
    ]
    cases = []
    for fields in _initializer(text, "std::vector<TestCase> test_cases"):
        # TestCase's defaults: bos "", eos "", supported_with_jinja true, no extra turns.
        fields = fields + ["", "", True, []][len(fields) - 4 :]
        name, template, expected, expected_jinja, bos, eos, supported, extra = fields
        if not supported:
            continue
        extra_turns = [{"role": role, "content": content} for role, content in extra]
        cases.append(
            TemplateCase(
                name, template, expected_jinja or expected, bos, eos, conversation + extra_turns
            )
        )
    return cases
