"""Text that comes in (stdin, arguments, typed lines, JSON files) must be UTF-8.

The rule: text that is not is refused, in one line that names where it came from and the
offset of the first bad byte, rather than decoded with replacement characters. A byte that is
not UTF-8 means the text is in another encoding (Latin-1, UTF-16) or is not text at all;
replacing it would send the model, and keep in the chat, something other than what the user
wrote, with no way to tell afterwards. Converting it (``iconv -f latin1 -t utf-8``) is the fix,
and the offset says where to look.

Python hands such bytes on as lone surrogates: arguments and (in a C or UTF-8 locale) stdin
decode them with ``surrogateescape`` (``\\xff`` becomes U+DCFF), and JSON's ``"\\ud800"``
escape makes one too. Neither can be encoded again, so each is found here, before it reaches
the tokenizer or an output file.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidTextError

_ESCAPED_BYTES = range(0xDC80, 0xDD00)  # what surrogateescape makes of bytes 0x80-0xff
_CONVERT = "convert it to UTF-8, e.g. with iconv -f latin1 -t utf-8"


def decode(data: bytes, where: str) -> str:
    """``data`` as text; InvalidTextError naming ``where`` and the byte offset if it is not
    UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTextError(
            f"{where}: byte offset {exc.start} is 0x{data[exc.start]:02x}, which is not UTF-8 "
            f"text; {_CONVERT}"
        ) from None


def problem(text: str) -> str | None:
    """Why ``text`` cannot be encoded as UTF-8 (its first bad character), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        if code in _ESCAPED_BYTES:
            offset = len(text[: exc.start].encode("utf-8"))
            return f"byte offset {offset} is 0x{code - 0xDC00:02x}, which is not UTF-8 text; {_CONVERT}"
        return (
            f"\\u{code:04x} is half of a UTF-16 surrogate pair without its other half, so not "
            "text; remove it or complete the pair"
        )
    return None


def check(text: str, where: str) -> str:
    """``text`` unchanged, or InvalidTextError naming ``where`` when it is not UTF-8."""
    found = problem(text)
    if found:
        raise InvalidTextError(f"{where}: {found}")
    return text


def json_problem(value: Any) -> str | None:
    """Why a string in decoded JSON (keys too) is not text, for the first one, or None."""
    pending = [value]
    while pending:  # not recursive: json.loads nests as deep as the recursion limit allows
        item = pending.pop()
        if isinstance(item, str):
            found = problem(item)
            if found:
                return found
        elif isinstance(item, dict):
            pending += [*item.values(), *item.keys()]
        elif isinstance(item, list):
            pending += item
    return None
