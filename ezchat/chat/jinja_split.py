"""Reading a Jinja chat template's render: where the message texts sit in it (found through a
sentinel per text, so typed special tokens can be tokenized as text), the easy-llama prefixes
and suffixes read off a sample conversation, and the end-of-turn markers a template names."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TemplateLimitError
from ..safetext import one_line

if TYPE_CHECKING:
    from .formats import Format

SENTINEL = re.compile("(\ue000EZ\\d+r?\ue001)")  # one group: re.split keeps the sentinels
_SENTINEL_PARTS = re.compile("\ue000EZ(\\d+)(r?)\ue001")
# End-of-turn markers of the common families; a template that mentions one stops on it.
TURN_ENDS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|eot|>",
    "<end_of_turn>",
    "<|end|>",
    "<|end_of_turn|>",
    "<|END_OF_TURN_TOKEN|>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
)


def split_render(
    fmt: Format,
    messages: list[dict[str, Any]],
    add_generation_prompt: bool,
    tools: list[Mapping[str, Any]] | None,
) -> list[tuple[str, bool]]:
    """``fmt``'s render as ``(text, is_content)`` pieces: render once for real and once with a
    sentinel per content (and per reasoning), then cut at the sentinels.

    Templates that trim a text (``strip``, ``strip('\\n')``, ...) are matched by trying
    the trimmed text; any other transformation gives up the split (with a warning) rather
    than mislabel text.
    """
    real = fmt._render_template(messages, add_generation_prompt, tools)
    marked = fmt._render_template(mark(messages), add_generation_prompt, tools)
    pieces = cut_at_sentinels(real, SENTINEL.split(marked), messages)
    if pieces is not None:
        return [piece for piece in pieces if piece[0]]
    warnings.warn(
        one_line(
            f"{fmt._what}: the chat template changes message text, so typed special "
            "tokens in it are not escaped"
        ),
        stacklevel=4,  # the caller of Format.segments, as from the method this was
    )
    return [(real, False)]


# How templates trim a message's text; the first that fits where the text stands is taken.
_TRIMS = (
    lambda text: text,
    str.strip,
    lambda text: text.strip("\n"),
    str.lstrip,
    lambda text: text.lstrip("\n"),
    str.rstrip,
    lambda text: text.rstrip("\n"),
)


def cut_at_sentinels(
    real: str, marked: list[str], messages: list[dict[str, Any]]
) -> list[tuple[str, bool]] | None:
    """``real`` cut into template text and message texts, where the marked render put a
    sentinel; None when the texts cannot be found there."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for number, piece in enumerate(marked):
        found = _sentinel_text(piece, messages)
        if found is None:
            if not real.startswith(piece, position):
                return None
            pieces.append((piece, False))
            position += len(piece)
            continue
        following = marked[number + 1] if number + 1 < len(marked) else ""
        if _sentinel_text(following, messages) is not None:
            following = ""
        for trim in _TRIMS:
            text = trim(found)
            end = position + len(text)
            if real.startswith(text, position) and real.startswith(following, end):
                break
        else:
            return None
        pieces.append((text, True))
        position = end
    return pieces if position == len(real) else None


def mark(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with a sentinel for each content and each reply's reasoning (``r``)."""
    marked = []
    for i, message in enumerate(messages):
        copy = {**message, "content": f"\ue000EZ{i}\ue001"}
        if message.get("reasoning_content"):
            copy["reasoning_content"] = f"\ue000EZ{i}r\ue001"
        marked.append(copy)
    return marked


def _sentinel_text(piece: str, messages: list[dict[str, Any]]) -> str | None:
    """The message text a sentinel stands for, or None for template text."""
    match = _SENTINEL_PARTS.fullmatch(piece)
    if match is None:
        return None
    index, reasoning = match.groups()
    return messages[int(index)]["reasoning_content" if reasoning else "content"]


def _common_prefix(a: str, b: str) -> str:
    """The shared head of two texts, never ending inside a ``<...>`` marker."""
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    common = a[:size]
    cut = common.rfind("<")
    return common[:cut] if cut > common.rfind(">") else common


def derive_parts(fmt: Format) -> dict[str, str]:
    """Prefixes and suffixes read off a rendered sample conversation.

    A boundary between two messages holds one message's suffix and the next one's prefix; the
    split point comes from where the conversation ends (a suffix with nothing after it).
    """
    roles = ["user", "assistant", "user", "assistant"]
    chat = [{"role": role, "content": role[0]} for role in roles]
    try:
        pieces = SENTINEL.split(fmt._render_template(mark(chat), False))
        after_user = SENTINEL.split(fmt._render_template(mark(chat[:1]), False))[-1]
    except TemplateLimitError:
        raise
    except Exception:  # a template this odd still renders; it only lacks the easy-llama keys
        return {}
    if len(pieces) != 9:
        return {}
    user_suffix = _common_prefix(pieces[2], after_user)
    bot_suffix = _common_prefix(pieces[8], pieces[4])
    parts = {
        "user_prefix": pieces[4][len(bot_suffix) :],
        "user_suffix": user_suffix,
        "bot_prefix": pieces[2][len(user_suffix) :],
        "bot_suffix": bot_suffix,
    }
    try:
        system_chat = [{"role": "system", "content": "s"}, *chat]
        system = SENTINEL.split(fmt._render_template(mark(system_chat), False))
    except TemplateLimitError:
        raise
    except Exception:  # no system role: its text gets folded into the user's
        return parts
    if len(system) == 11:
        parts["system_prefix"] = system[0]
        parts["system_suffix"] = system[2].removesuffix(parts["user_prefix"])
    return parts
