"""Saving a reply while it streams, from the generation worker (see ``ReplySaver``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..chat.reply import Reply
    from ..chat.thread import Message
    from .chatlog import ChatLog


class ReplySaver:
    """A streaming reply's text, written to the store from the generation worker: its node's
    row when the reply starts, its text at most every ``FLUSH_SECONDS`` as it grows, and the
    final text with its token ids and their weighing when it ends, however it ends (finished,
    stopped, the app quitting).

    The Thread adds the reply's node to its tree when the reply ends, so the row is written
    ahead of it under the id the tree gives next (``Tree.next_id``) and the parent it will
    have; a branch grows a node the tree holds already."""

    # At most two small commits a second; a kill loses at most this much of a reply.
    FLUSH_SECONDS = 0.5

    def __init__(
        self,
        log: ChatLog,
        kind: str,
        head: str,
        reasoning_head: str = "",
        reply: Reply | None = None,
    ) -> None:
        self.log = log
        self.kind = kind
        self.reply = reply
        self.text = head
        self.reasoning = reasoning_head
        self.node_id: int | None = None
        self._flushed_at = time.monotonic()
        if reply is None:
            return
        log.sync()  # the conversation so far (a branch's node with its kept text, too)
        chat_id = log.chat_id
        if chat_id is None or not log.saving:
            return
        tree = log.thread.tree
        if reply.in_place:
            self.node_id = reply.continues_node.id
            return
        parent = reply.continues_node.parent if reply.continues_node is not None else tree.active
        self.node_id = log._save(
            log.store.add_node,
            chat_id,
            parent.id,
            "bot",
            head,
            origin=reply.origin,
            reasoning=reasoning_head,
            node_id=tree.next_id,
        )
        if self.node_id is not None:  # the end of the stored path, as it will be in the tree
            log.saved_leaf_is(self.node_id)

    def grow(self, text: str, reasoning: str = "") -> None:
        """What the latest token added to the answer and to the reasoning."""
        self.text += text
        self.reasoning += reasoning
        if time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS:
            self._write(self.node_id, self.text, self.reasoning)

    def finish(self, message: Message) -> None:
        """The reply as the Thread recorded it: its node's text, the tokens it was generated
        as and how the model weighed them."""
        log, reply = self.log, self.reply
        node = reply.node if reply is not None else None
        if node is None or self.node_id is None:
            return
        if node.id != self.node_id:  # the tree numbered it otherwise: move the row
            log._save(log.store.forget_nodes, log.chat_id, [self.node_id])
            self.node_id = None
            log.sync()
        if node.role == "bot" and node.tokens is None:
            node.tokens = log._tokens(message)
        self._write(node.id, message["content"], message.get("reasoning", ""), node)
        log.saved_reply(node)
        log.sync()  # the active leaf, now the reply, even if the app quits before it shows

    def _write(self, node_id: int | None, text: str, reasoning: str, node=None) -> None:
        self._flushed_at = time.monotonic()
        if node_id is None or self.log.chat_id is None:
            return
        self.log._save(
            self.log.store.update_node,
            self.log.chat_id,
            node_id,
            text,
            tokens=node.tokens if node is not None else None,
            token_info=node.token_info if node is not None else None,
            reasoning=reasoning,
        )
