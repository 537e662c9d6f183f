"""Text that did not come from ezchat, made safe to show on a terminal.

A model's reply, a server's answer, a GGUF file's metadata (``general.name``, the chat
template), an imported chat, a file name or a preset file can hold characters that a terminal
obeys instead of printing: ESC starts sequences that set the window title (OSC 0/2), clear the
screen (CSI 2J), write the user's clipboard (OSC 52), hide a link behind other text (OSC 8) or
start device strings (DCS, APC, PM, SOS); the C1 controls U+0080-U+009F do the same in one
character (U+009B is CSI); a bare CR or a backspace lets later text overwrite what was shown
before it; and the bidi embeddings, overrides and isolates reorder text so that it reads
differently from what it is ("Trojan Source"). The app, the REPL and the CLI's plain output
pass every such text through ``visible`` on its way to the terminal; the store, ``--json``
output and files keep the raw text.

The rule is one visible character for each dangerous one, and nothing else changes:

- C0 controls and DEL become their Unicode control pictures (ESC is ``␛``, BEL ``␇``, CR
  ``␍``, DEL ``␡``), so ``\\x1b]0;title\\x07`` reads ``␛]0;title␇``;
- C1 controls and the bidi controls become ``�`` (U+FFFD): they have no pictures, and C1
  characters in real text are mostly mis-decoded bytes, for which ``�`` is the usual sign;
- newline and tab stay, and so does a CR right before a newline (a Windows line ending moves
  nothing the newline would not).

Replacing rather than removing means nothing is hidden (a reply that tried to set the title
shows that it did), and no parsing is needed: once ESC, the C1 controls and BEL/ST are
pictures, no sequence can start or end, so the rest of it is plain text. One character for
one keeps lengths and offsets: the input box maps its cursor onto the shown text unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
CR_PICTURE = "\u240d"

# Every character the rule replaces; a CR is replaced unless a newline follows it.
_UNSAFE_CLASS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]|\r(?!\n)")
# The same without the lookahead: a plain class scans several times faster.
_MAYBE_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}\r]")

_PICTURES: dict[str, str] = {chr(code): chr(0x2400 + code) for code in range(0x20)}
_PICTURES["\x7f"] = "\u2421"
_PICTURES.update((chr(code), REPLACEMENT) for code in range(0x80, 0xA0))
_PICTURES.update((chr(code), REPLACEMENT) for code in range(0x202A, 0x202F))
_PICTURES.update((chr(code), REPLACEMENT) for code in range(0x2066, 0x206A))


def _picture(match: re.Match[str]) -> str:
    return _PICTURES[match.group()]


def visible(text: str) -> str:
    """``text`` with every character a terminal would obey (or that reorders text) replaced
    by one visible character; the same length, and unchanged when there is none."""
    # Only this search runs for almost every streamed token: most have nothing to replace.
    if _MAYBE_UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_picture, text)


def one_line(text: str) -> str:
    """``text`` as one visible line: its runs of whitespace, line breaks included, made one
    space (a warning or an error that quotes a template's or a server's words)."""
    return visible(" ".join(str(text).split()))


class VisibleStream:
    """``visible`` for text that arrives in pieces (a streamed reply). A CR that ends one
    piece waits for the next: a newline after it makes it a line ending, anything else a
    ``␍``. Without this a reply could move the cursor back with a CR in one token and
    overwrite the line with the next."""

    __slots__ = ("_held_cr",)

    def __init__(self) -> None:
        self._held_cr = False

    def push(self, piece: str) -> str:
        if self._held_cr:
            piece = "\r" + piece
            self._held_cr = False
        if piece.endswith("\r"):
            piece = piece[:-1]
            self._held_cr = True
        return visible(piece)

    def finish(self) -> str:
        """The end of the text: a CR still held is shown as ``␍``."""
        held, self._held_cr = self._held_cr, False
        return CR_PICTURE if held else ""


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_TO_ESCAPE = re.compile(f"[\\\\\n\t\r{_UNSAFE_CLASS}]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with backslash escapes for what ``visible`` replaces and for whitespace that
    does not show (``\\n``, ``\\t``, ``\\x1b``, ``\\u202e``): for one token, where the exact
    characters matter more than how the text reads."""
    return _TO_ESCAPE.sub(_escape, text)


# JSON escapes C0 controls itself; these it leaves raw (with ensure_ascii=False).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_text(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **kwargs)`` that is safe to print: DEL, the C1
    and bidi controls (and the line separators JavaScript chokes on) are written as ``\\u``
    escapes. They can only be inside strings there, so the data read back is the same."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
