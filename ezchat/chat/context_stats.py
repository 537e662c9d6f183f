"""What a chat's context window holds: the tokens in it over its size (never over 100%), how
many messages were left out of it, and the whole history's size, counted apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PromptTooLongError

if TYPE_CHECKING:
    from .thread import Thread


@dataclass(slots=True)
class ContextStats:
    """``in_context`` tokens of ``context_length`` hold the chat; ``left_out`` of ``messages``
    did not fit; ``history_tokens`` is every message's length, as if nothing were left out."""

    in_context: int
    context_length: int
    left_out: int
    messages: int
    history_tokens: int

    @property
    def fraction(self) -> float:
        """How full the context is, 0.0 to 1.0."""
        return min(1.0, self.in_context / self.context_length) if self.context_length else 0.0

    def lines(self) -> list[str]:
        return [
            f"{self.in_context} / {self.context_length} tokens in the context "
            f"({self.fraction:.0%})",
            f"{self.left_out} of {self.messages} messages left out of the context",
            f"history: {self.messages} messages, {self.history_tokens} tokens",
        ]


def context_stats(thread: Thread) -> ContextStats:
    """The messages the next reply's prompt keeps (the oldest after the system prompt left out
    until it fits with room for the reply), beside the whole history."""
    limit = thread.model.context_length
    last_plan = thread.last_plan
    try:
        plan = thread.plan_prompt()
        kept, left_out = plan.messages, plan.dropped
    except PromptTooLongError:  # the newest message alone overflows; the next send says so
        messages = thread.messages
        kept = [m for m in messages[:-1] if m["role"] == "system"] + messages[-1:]
        left_out = len(messages) - len(kept)
    finally:
        thread.last_plan = last_plan  # the pane reports the plan the last reply ran with
    in_context = len(thread._tokens_for(kept, add_generation_prompt=False))
    return ContextStats(
        in_context=min(in_context, limit),
        context_length=limit,
        left_out=left_out,
        messages=len(thread.messages),
        history_tokens=thread.len_messages(),
    )
