"""``Reply``, a bot reply being generated, and the kinds of reply a chat starts.

One rule for a reroll's seed, so that the app, the REPL and library users start replies the
same way (``Thread.start``, with the kinds in ezchat/chat/reply_kind.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .reply_kind import ReplyKind
from .samplers import SamplerSettings
from .tree import Made, Node, Origin

if TYPE_CHECKING:
    from ..engine.generation import Generation
    from ..engine.results import GenerationResult, TokenEvent
    from .message import Message
    from .thread import Thread


def reroll_sampler(sampler: SamplerSettings, version: int) -> SamplerSettings:
    """The sampler for the ``version``-th reroll of a reply (1 for the first). A fixed seed
    would write the same reply again, so each version gets its own seed, still reproducible:
    seed + version. Greedy sampling and a random seed (-1) need no change."""
    if sampler.seed < 0 or sampler.is_greedy or version <= 0:
        return sampler
    return dataclasses.replace(sampler, seed=(sampler.seed + version) % 2**32)


class Reply:
    """A bot reply being generated. Iterate it for ``TokenEvent``s; when iteration ends
    (finished, stopped with ``cancel()``, or closed early) the reply is recorded in the Thread,
    partial text included."""

    def __init__(
        self,
        thread: Thread,
        generation: Generation,
        prefix: str,
        continues: Message | None,
        kind: ReplyKind | None = None,
    ):
        self.thread = thread
        self.kind = kind or (ReplyKind.CONTINUE if continues is not None else ReplyKind.REPLY)
        self.generation = generation
        self.prefix = prefix
        self.continues = continues
        self.message: Message | None = None
        # Set by reroll and branch: the version of the reply this one replaces.
        self.replaced: Message | None = None
        self.branch_text = ""
        # How the reply's node is made, the node it continues (continue, branch), whether it
        # grows that node (a branch's own new sibling) rather than a sibling of it, and, once
        # recorded, its node.
        self.origin = Origin(Made.REPLY)
        self.continues_node: Node | None = None
        self.in_place = False
        self.node: Node | None = None
        # The reply told apart into reasoning and answer as it streams: ``parts`` is what the
        # latest token added to each, ``head_parts`` what the reply holds before its first
        # (the reply continued and the prefix), ``prefix_parts`` the prefix's share of it.
        self.splitter = splitter = thread.reasoning_splitter()
        before = thread.reply_text(continues) if continues is not None else ""
        kept = splitter.push(before) if before else ("", "")
        self.prefix_parts: tuple[str, str] = splitter.push(prefix) if prefix else ("", "")
        self.head_parts = (kept[0] + self.prefix_parts[0], kept[1] + self.prefix_parts[1])
        self.parts: tuple[str, str] = ("", "")

    @property
    def result(self) -> GenerationResult:
        return self.generation.result

    def cancel(self) -> None:
        self.generation.cancel()

    def __iter__(self) -> Iterator[TokenEvent]:
        splitter = self.splitter
        try:
            for event in self.generation:
                self.parts = splitter.push(event.text) if event.text else ("", "")
                yield event
            # what was held back in case it began a marker is text after all
            self.parts = splitter.finish()
            if any(self.parts):
                yield _HELD_BACK_TEXT
        finally:
            self.message = self.thread._record_reply(self)

    def run(self) -> str:
        for _ in self:
            pass
        assert self.message is not None
        return self.message["content"]


@dataclass(frozen=True, slots=True)
class _HeldBackEvent:
    """A ``TokenEvent`` with no token: the text the reasoning splitter held back (in case it
    began a marker) is released into ``parts``. Its own class keeps the engine's out of the
    conversation layer at run time."""

    id: int = -1
    text: str = ""
    candidates: None = None


_HELD_BACK_TEXT = _HeldBackEvent()
