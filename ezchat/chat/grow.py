"""``Thread.grow``: N alternative replies grown at once, each recorded as a sibling node.

The backend grows them in one batch (a local Model's ``grow``, ezchat/engine/grow.py). When
the growth ends, finished or stopped, each of the N replies becomes a bot node under the same
parent, made ``Origin(Made.GROW, i, n)`` (1-based: "grown 2 of 4"), with its tokens and
their TokenInfo, partial text included; the first is made active. After a user message the N
are new replies to it; after a bot reply they are alternatives to that reply (its siblings,
as a reroll's are), and the reply stays in the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import EzChatError
from .message import Message
from .samplers import SamplerSettings
from .tree import Made, Node, Origin

if TYPE_CHECKING:
    from ..engine.grow import Growth
    from ..engine.results import GenerationResult, TokenEvent
    from .thread import Thread

DEFAULT_GROW = 4  # how many replies one grow makes unless told ([loom] grow in the config)


class GrowingReplies:
    """N replies growing in a Thread. Iterate it for ``(sequence, TokenEvent)``; ``cancel()``
    from any thread ends all N at the next token. When iteration ends the replies are in the
    tree: ``nodes`` (in sequence order) and ``messages``."""

    def __init__(self, thread: Thread, growth: Growth, parent: Node, n: int) -> None:
        self.thread = thread
        self.growth = growth
        self.parent = parent
        self.n = n
        self.nodes: list[Node] = []
        # each sequence's text so far, for a display that lists the N as they grow
        self.texts: list[str] = [""] * n

    @property
    def results(self) -> list[GenerationResult]:
        return self.growth.results

    @property
    def messages(self) -> list[Message]:
        return [node.message for node in self.nodes]  # type: ignore[misc]

    def cancel(self) -> None:
        self.growth.cancel()

    def __iter__(self) -> Iterator[tuple[int, TokenEvent]]:
        try:
            for sequence, event in self.growth:
                self.texts[sequence] += event.text
                yield sequence, event
        finally:
            self.nodes = self._record()

    def run(self) -> list[Message]:
        for _ in self:
            pass
        return self.messages

    def pick(self, index: int) -> Node:
        """Make the ``index``-th grown reply (0-based) the active one; the conversation
        continues from it."""
        if not 0 <= index < len(self.nodes):
            raise EzChatError(
                f"there are {len(self.nodes)} grown replies; pick 1 to {len(self.nodes)}"
            )
        return self.thread.switch_to(self.nodes[index])

    def _record(self) -> list[Node]:
        thread = self.thread
        tree = thread.tree
        nodes = []
        for i, result in enumerate(self.growth.results):
            message = thread.create_message("bot", "")
            thread._set_reply_text(message, result.text)
            node = tree.add(self.parent, message, Origin(Made.GROW, i + 1, self.n), activate=False)
            # as a single reply keeps them: the prompt after it then matches the cache
            if result.stop_reason != "stop_string":
                tokens = list(result.tokens)
                thread._content_tokens[thread.reply_text(message)] = tokens
                node.tokens = tokens
                info = result.token_info
                node.token_info = list(info) if info and len(info) == len(tokens) else None
            nodes.append(node)
        if nodes:
            thread.last_result = self.growth.results[0]
            thread.switch_to(nodes[0])
        else:
            tree.switch_to(self.parent)
        return nodes


def start_grow(thread: Thread, n: int, sampler: SamplerSettings | None) -> GrowingReplies:
    """Begin growing ``n`` replies to the conversation's prompt (see the module)."""
    grow = getattr(thread.model, "grow", None)
    if grow is None:
        raise EzChatError(
            "growing several replies at once needs a local model (one llama.cpp batch); "
            "reroll instead on a server"
        )
    if n < 1:
        raise EzChatError(f"grow makes at least 1 reply, not {n}; ask for 1 or more")
    if not thread.messages:
        raise EzChatError("there is nothing to reply to; send a message first")
    tree = thread.tree
    leaf = tree.active
    parent = leaf.parent if leaf.role == "bot" and leaf.parent is not None else leaf
    tree.truncate_to(parent)
    try:
        plan = thread.plan_prompt()
        growth = grow(plan.tokens, n, sampler or thread.sampler, list(thread.format.stops))
    except BaseException:
        tree.switch_to(leaf)
        raise
    return GrowingReplies(thread, growth, parent, n)
