"""Turning a stream of token bytes into text that is safe to show.

Two things make naive detokenizing wrong: a UTF-8 character can be split across tokens (emoji,
CJK), and a stop string can be split across tokens. ``TextAssembler`` holds back exactly the
bytes and characters that might still turn into one of those, and nothing more.
"""

from __future__ import annotations

import codecs


class TextAssembler:
    """Feed it token bytes; it returns the text that is certain to be shown."""

    __slots__ = ("_decoder", "_stops", "_max_stop", "_held", "text", "stopped_by")

    def __init__(self, stops: list[str] | tuple[str, ...] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = tuple(stop for stop in stops if stop)
        self._max_stop = max((len(stop) for stop in self._stops), default=0)
        self._held = ""  # decoded text not yet shown because it may start a stop string
        self.text = ""  # everything shown so far
        self.stopped_by: str | None = None

    def push(self, piece: bytes) -> str:
        """Add one token's bytes; return the newly showable text ('' while holding back)."""
        held = self._held + self._decoder.decode(piece)
        if not self._stops:
            self.text += held
            self._held = ""
            return held
        cut = self._first_stop(held)
        if cut is not None:
            out = held[:cut]
            self._held = ""
            self.text += out
            return out
        keep = self._unsafe_tail(held)
        out = held[: len(held) - keep] if keep else held
        self._held = held[len(held) - keep :] if keep else ""
        self.text += out
        return out

    def finish(self) -> str:
        """End of generation: release what was held back, unless a stop string ended it.

        Bytes of a character that generation cut off midway are dropped: they are not text."""
        if self.stopped_by is not None:
            return ""
        rest = self._held
        self._held = ""
        self._decoder.reset()
        self.text += rest
        return rest

    def _first_stop(self, held: str) -> int | None:
        best: int | None = None
        for stop in self._stops:
            index = held.find(stop)
            if index != -1 and (best is None or index < best):
                best, self.stopped_by = index, stop
        return best

    def _unsafe_tail(self, held: str) -> int:
        """Length of the longest tail of ``held`` that is a proper prefix of some stop string."""
        for size in range(min(len(held), self._max_stop - 1), 0, -1):
            tail = held[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0
