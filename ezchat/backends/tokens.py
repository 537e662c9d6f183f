"""Token ids on the client side of a server: what ezchat remembers so it can turn the token
prompts a Thread builds back into text, and the ids it makes up itself.

Three kinds of id appear in a remote prompt:

* the server's own ids (from its tokenize endpoint, or streamed with a reply);
* marker ids (``-100`` to ``-103``) for the ``server`` format: each message of a chat that the
  server renders with its own template is framed by markers, which ``start`` turns back into
  ``/v1/chat/completions`` messages;
* estimated ids (``-1000`` and below) for servers that cannot tokenize: short pieces of text
  (about the size of a real token) numbered on first sight, so the text comes back exactly and
  the count of ids is a cautious (somewhat high) estimate of the server's count.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence

# The server format's frame strings, in private-use characters nobody types; the shipped
# formats/server.toml holds the same strings.
SERVER_SYSTEM = "\ue000ez-server:system\ue001"
SERVER_USER = "\ue000ez-server:user\ue001"
SERVER_ASSISTANT = "\ue000ez-server:assistant\ue001"
SERVER_END = "\ue000ez-server:end\ue001"
MARKER_IDS = {SERVER_SYSTEM: -100, SERVER_USER: -101, SERVER_ASSISTANT: -102, SERVER_END: -103}
MARKER_TEXT = {token: text for text, token in MARKER_IDS.items()}
MARKER_ROLES = {-100: "system", -101: "user", -102: "assistant"}
END_MARKER = MARKER_IDS[SERVER_END]
_MARKER_SPLIT = re.compile("(" + "|".join(re.escape(m) for m in MARKER_IDS) + ")")

ESTIMATED_BASE = -1000
# Words split into pieces of at most four letters, digits in threes, every other character
# alone: BPE vocabularies average about four characters of English per token, so the count
# stays at or above the real one and the prompt fits.
_PIECES = re.compile(r" ?[^\W\d_]{1,4}| ?\d{1,3}| ?[^\w\s]|\s{1,4}|_", re.UNICODE)


def split_markers(text: str) -> list[str]:
    """``text`` cut around server-format markers (which stand alone in the result)."""
    return [part for part in _MARKER_SPLIT.split(text) if part]


def is_marker(token: int) -> bool:
    return token in MARKER_TEXT


def is_estimated(token: int) -> bool:
    return token <= ESTIMATED_BASE


class EstimatedVocab:
    """Made-up ids for text, for servers without a tokenizer endpoint."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._texts: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        ids = []
        position = 0
        for match in _PIECES.finditer(text):
            if match.start() != position:  # nothing unmatched may be lost
                ids.append(self._id(text[position : match.start()]))
            ids.append(self._id(match.group()))
            position = match.end()
        if position < len(text):
            ids.append(self._id(text[position:]))
        return ids

    def _id(self, piece: str) -> int:
        token = self._ids.get(piece)
        if token is None:
            token = ESTIMATED_BASE - len(self._texts)
            self._ids[piece] = token
            self._texts.append(piece)
        return token

    def text(self, token: int) -> str:
        index = ESTIMATED_BASE - token
        return self._texts[index] if 0 <= index < len(self._texts) else ""


class TokenMemory:
    """What ezchat learned about the server's ids: the bytes of single tokens (llama.cpp says
    them), and whole id sequences with the text they came from (every tokenize call and every
    reply). With both, a token prompt becomes text again without asking the server, which
    matters where the server drops special tokens when it detokenizes (llama-cpp-python)."""

    MAX_SEQUENCES = 4096

    def __init__(self) -> None:
        self.pieces: dict[int, bytes] = {}
        self._sequences: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._by_first: dict[int, set[tuple[int, ...]]] = {}
        self.single_ids: dict[str, int] = {}  # a text that is exactly one token

    def remember(self, tokens: Sequence[int], text: str) -> None:
        key = tuple(tokens)
        if not key or not text:
            return
        if key in self._sequences:
            self._sequences.move_to_end(key)
            return
        self._sequences[key] = text
        self._by_first.setdefault(key[0], set()).add(key)
        if len(key) == 1:
            self.single_ids.setdefault(text, key[0])
        if len(self._sequences) > self.MAX_SEQUENCES:
            old, _ = self._sequences.popitem(last=False)
            self._by_first.get(old[0], set()).discard(old)

    def remember_piece(self, token: int, piece: bytes) -> None:
        self.pieces[token] = piece

    def longest_match(self, tokens: Sequence[int], start: int) -> tuple[int, str] | None:
        """The longest remembered sequence at ``tokens[start:]``: (its length, its text)."""
        best: tuple[int, str] | None = None
        for key in self._by_first.get(tokens[start], ()):
            size = len(key)
            if (best is None or size > best[0]) and tuple(tokens[start : start + size]) == key:
                best = (size, self._sequences[key])
                best_key = key
        if best is not None:
            self._sequences.move_to_end(best_key)  # in use: the last to be forgotten
        return best

    def join_pieces(self, tokens: Iterable[int]) -> str | None:
        """The text of ``tokens`` from single-token bytes, or None if one of them is unknown."""
        pieces = self.pieces
        try:
            data = b"".join(pieces[token] for token in tokens)
        except KeyError:
            return None
        return data.decode("utf-8", errors="replace")
