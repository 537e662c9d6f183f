"""How a reply's per-token probabilities and top alternatives (``TokenInfo``) are packed into
one blob of the saved-chats file, readable on any machine.

Layout, little-endian: a format byte (1), then per token its id (int32), its probability
(float32), the number of alternatives k (uint8), and k pairs of id (int32) and probability
(float32). About 90 bytes a token with the top 10. A token whose weighing is not known has
id -1 and no alternatives.
"""

from __future__ import annotations

import struct

from ..chat.tree import TokenInfo
from ..errors import StoreError

_FORMAT = 1
_HEAD = struct.Struct("<ifB")
_PAIR = struct.Struct("<if")


# a token whose weighing is unknown (the head of a reply continued from text): no alternatives
_UNKNOWN = -1


def pack_token_info(infos: list[TokenInfo | None]) -> bytes:
    parts = [bytes([_FORMAT])]
    for info in infos:
        if info is None:
            parts.append(_HEAD.pack(_UNKNOWN, 0.0, 0))
            continue
        top = info.top[:255]
        parts.append(_HEAD.pack(info.id, info.probability, len(top)))
        parts.extend(_PAIR.pack(token, probability) for token, probability in top)
    return b"".join(parts)


def unpack_token_info(data: bytes) -> list[TokenInfo | None]:
    """The TokenInfo list ``pack_token_info`` wrote; a damaged blob is a StoreError."""
    if not data:
        return []
    if data[0] != _FORMAT:
        raise StoreError(
            f"a saved reply's token probabilities are in format {data[0]}, which this ezchat "
            "does not know; upgrade ezchat"
        )
    infos: list[TokenInfo | None] = []
    offset, end = 1, len(data)
    try:
        while offset < end:
            token, probability, count = _HEAD.unpack_from(data, offset)
            offset += _HEAD.size
            top = tuple(
                (int(t), float(p))
                for t, p in (_PAIR.unpack_from(data, offset + i * _PAIR.size) for i in range(count))
            )
            offset += count * _PAIR.size
            if offset > end:
                raise struct.error("past the end")
            known = token != _UNKNOWN
            infos.append(TokenInfo(int(token), float(probability), top) if known else None)
    except struct.error as error:
        raise StoreError(
            f"a saved reply's token probabilities are damaged ({error}); the reply's text is "
            "kept, reroll it to measure them again"
        ) from None
    return infos
