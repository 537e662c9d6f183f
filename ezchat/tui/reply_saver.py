"""Saving a reply while it streams, from the generation worker (see ``ReplySaver``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..chat.reply_kind import ReplyKind
from ..chat.tree import Made, Origin

if TYPE_CHECKING:
    from ..chat.thread import Message
    from .chatlog import ChatLog


class ReplySaver:
    """A streaming reply's text, written to the store from the generation worker: a row when
    the reply starts, its text at most every ``FLUSH_SECONDS`` as it grows, and the final text
    with its token ids when it ends, however it ends (finished, stopped, the app quitting)."""

    # At most two small commits a second; a kill loses at most this much of a reply.
    FLUSH_SECONDS = 0.5

    def __init__(self, log: ChatLog, kind: str, head: str, reasoning_head: str = "") -> None:
        self.log = log
        self.text = head
        self.reasoning = reasoning_head
        self.node_id: int | None = None
        self._flushed_at = time.monotonic()
        chat_id = log._ensure_chat()
        if chat_id is None:
            return
        if kind == ReplyKind.REPLY:
            self.node_id = log._save(
                log.store.add_message, chat_id, "bot", head, reasoning=reasoning_head
            )
            return
        entry = log.entries[-1]
        parent = log.parent_id(len(log.entries) - 1)
        if entry.message_id is None or parent is None:
            return
        if ReplyKind(kind).adds_version:  # a sibling of the reply
            origin = Origin(Made.REROLL if kind == ReplyKind.REROLL else Made.BRANCH)
            self.node_id = log._save(
                log.store.add_node,
                chat_id,
                parent,
                "bot",
                head,
                origin=origin,
                reasoning=reasoning_head,
            )
        else:  # continue: the reply grows in place
            self.node_id = entry.message_id

    def grow(self, text: str, reasoning: str = "") -> None:
        """What the latest token added to the answer and to the reasoning."""
        self.text += text
        self.reasoning += reasoning
        if time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS:
            self._write(self.text, None, self.reasoning)

    def finish(self, message: Message) -> None:
        """The reply as the Thread recorded it (its text and the tokens it was generated as)."""
        reasoning = message.get("reasoning", "")
        self._write(message["content"], self.log._tokens(message), reasoning)

    def _write(self, text: str, tokens: list[int] | None, reasoning: str) -> None:
        self._flushed_at = time.monotonic()
        if self.node_id is not None:
            self.log._save(
                self.log.store.update_node,
                self.log.chat_id,
                self.node_id,
                text,
                tokens=tokens,
                reasoning=reasoning,
            )
