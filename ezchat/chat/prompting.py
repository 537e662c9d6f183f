"""How a Thread's messages become prompt tokens: each turn extends the previous turn's tokens
exactly (user text tokenized with special tokens off, each reply kept as the very tokens the
model generated), so the Model evaluates only what is new; and which of the oldest messages a
prompt leaves out when the conversation outgrows the context (a mixin of Thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PromptTooLongError
from .message import Message
from .samplers import SamplerSettings

if TYPE_CHECKING:
    from .thread import Thread

# A prompt leaves at least this much of the context for the reply, unless the sampler's
# max_len_tokens asks for less.
DEFAULT_REPLY_ROOM = 1024


@dataclass(slots=True)
class PromptPlan:
    """The prompt for the next reply: its tokens and which messages it left out."""

    tokens: list[int]
    messages: list[Message]
    dropped: int


class PromptTokens:
    def _format_text_tokens(self: Thread, text: str) -> list[int]:
        tokens = self._text_tokens.get(text)
        if tokens is None:
            tokens = self.model.tokenize(text, add_bos=False, special=True)
            self._text_tokens[text] = tokens
        return tokens

    def content_tokens(self: Thread, text: str) -> list[int]:
        """User-written text: special tokens off, so ``<|im_end|>`` typed in a message is text.
        A reply's content maps to the exact tokens the model generated for it."""
        tokens = self._content_tokens.get(text)
        if tokens is None:
            tokens = self.model.tokenize(text, add_bos=False, special=False)
            self._content_tokens[text] = tokens
        return tokens

    def remember_tokens(self: Thread, text: str, tokens: Sequence[int]) -> bool:
        """Use these token ids for ``text`` wherever it appears as content, as when a saved reply
        is reopened: the ids the model generated keep the cache matching, where tokenizing the
        text again may split it differently. Ids that do not spell ``text`` in this model's
        vocabulary (another model's) are refused; returns whether they were taken."""
        model = self.model
        if not tokens or not all(0 <= token < model.n_vocab for token in tokens):
            return False
        # a reply cut off midway through a character shows without its bytes (shown_text)
        if text != model.detokenize(list(tokens)) and text != model.shown_text(tokens):
            return False
        self._content_tokens[text] = list(tokens)
        return True

    def _tokens_for(
        self: Thread, messages: list[Message], add_generation_prompt: bool
    ) -> list[int]:
        segments = self.format.segments(self._render_messages(messages), add_generation_prompt)
        model = self.model
        tokens: list[int] = [model.bos_token] if model.add_bos else []
        for text, is_content in segments:
            if is_content:
                tokens.extend(self.content_tokens(text))
            elif text:
                tokens.extend(self._format_text_tokens(text))
        return tokens

    def len_messages(self: Thread) -> int:
        """All messages' length in tokens, as the model would see them untruncated."""
        return len(self._tokens_for(self.messages, add_generation_prompt=False))

    def __len__(self: Thread) -> int:
        return self.len_messages()

    def reply_room(self: Thread, sampler: SamplerSettings | None = None) -> int:
        sampler = sampler or self.sampler
        room = min(DEFAULT_REPLY_ROOM, self.model.context_length // 4)
        if sampler.max_len_tokens > 0:
            room = min(room, sampler.max_len_tokens)
        return max(1, room)

    def plan_prompt(self: Thread, prefix: str = "", continues: Message | None = None) -> PromptPlan:
        """The prompt tokens for the next bot reply, leaving out the oldest messages after the
        system prompt(s) until it fits with room for the reply. The newest message stays."""
        messages = [m for m in self.messages if m is not continues]
        tail = self.content_tokens(prefix) if prefix else []
        if continues is not None:
            tail = self.content_tokens(self.reply_text(continues)) + tail
        limit = self.model.context_length
        room = self.reply_room()
        droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]

        def without_oldest(n: int) -> tuple[list[Message], list[int]]:
            left_out = set(droppable[:n])
            kept = [m for i, m in enumerate(messages) if i not in left_out]
            return kept, self._tokens_for(kept, add_generation_prompt=True) + tail

        dropped = self._drop_past_any_context(messages, droppable)
        kept, tokens = without_oldest(dropped)
        if len(tokens) + room > limit:
            # The fewest messages to leave out. The prompt only shrinks as more are left out,
            # so halving the range renders the conversation a handful of times, where dropping
            # one message at a time would render it once per message dropped (a long chat's
            # turn would then cost more with every turn).
            low, high = dropped + 1, len(droppable)
            best: tuple[int, list[Message], list[int]] | None = None
            while low <= high:
                middle = (low + high) // 2
                candidate = without_oldest(middle)
                if len(candidate[1]) + room <= limit:
                    best, high = (middle, *candidate), middle - 1
                else:
                    low = middle + 1
            if best is not None:
                dropped, kept, tokens = best
            else:
                dropped = len(droppable)
                kept, tokens = without_oldest(dropped)
                if len(tokens) >= limit:  # not even with less room for the reply
                    raise PromptTooLongError(
                        f"the last message and system prompt take {len(tokens)} tokens but the "
                        f"context holds {limit}; shorten the message or load a larger "
                        "context_length"
                    )
        plan = PromptPlan(tokens, kept, dropped)
        self.last_plan = plan
        return plan

    def _drop_past_any_context(self: Thread, messages: list[Message], droppable: list[int]) -> int:
        """How many of the oldest messages must be left out because each of the last of them
        alone is longer than the context could hold, known from its length without tokenizing
        it (megabytes take seconds and gigabytes in llama.cpp); a message that cannot be left
        out (a system prompt, the newest message) and is that long is refused in one line."""
        limit = self.model.context_length
        if all(len(message["content"] or "") <= limit for message in messages):
            return 0  # fewer characters than tokens in the context: nothing to know here
        # a server's vocabulary is not known here
        longest = getattr(self.model, "longest_token_bytes", None)
        if longest is None:
            return 0
        most = limit * longest
        must_drop = 0
        for index, message in enumerate(messages):
            size = len(message["content"] or "")
            if size <= most:
                continue
            if index not in droppable:
                what = "the system prompt" if message["role"] == "system" else "the message"
                raise PromptTooLongError(
                    f"{what} is {size:,} characters, more than a context of {limit} tokens can "
                    f"hold (a token spells at most {longest} bytes of text); shorten it or load "
                    "a larger context_length"
                )
            must_drop = droppable.index(index) + 1
        return must_drop

    def inference_str_from_messages(self: Thread) -> str:
        """The prompt text for the next reply, truncated to fit, as the model will see it."""
        plan = self.plan_prompt()
        return self.format.render(self._render_messages(plan.messages), add_generation_prompt=True)
