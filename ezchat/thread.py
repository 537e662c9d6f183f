"""``Thread``: a conversation with a Model in a prompt format.

The Thread turns its messages into prompt tokens so that every turn extends the previous
turn's tokens exactly (user text tokenized with special tokens off, each reply kept as the
very tokens the model generated), which lets the Model evaluate only what is new. When the
conversation outgrows the context, the oldest messages after the system prompt are left out
of the prompt; ``messages`` still holds all of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import formats as formats_module
from .errors import EzChatError, PromptTooLongError
from .samplers import SamplerSettings

if TYPE_CHECKING:
    # Types only: the conversation layer talks to any Backend and never loads llama.cpp itself.
    from .backends.base import Backend
    from .formats import Format
    from .generation import Generation, GenerationResult, TokenEvent

ROLES = ("system", "user", "bot")
_ROLE_ALIASES = {"assistant": "bot", "model": "bot"}
# The terminal chat is an interface (ezchat.repl), a layer above this one: the package registers
# it (register_terminal_chat) so that the conversation never imports an interface.
_terminal_chat: Callable[..., None] | None = None
# A prompt leaves at least this much of the context for the reply, unless the sampler's
# max_len_tokens asks for less.
DEFAULT_REPLY_ROOM = 1024


class Message(dict):
    """A dict with ``role``, ``prefix``, ``content`` and ``postfix``."""

    # For a bot reply: the start the user wrote for it (a prefix), which a reroll keeps.
    reply_prefix = ""

    def __init__(self, role: str, content: str, prefix: str = "", postfix: str = "", **extra: Any):
        super().__init__(role=role, prefix=prefix, content=content, postfix=postfix, **extra)

    def as_string(self) -> str:
        return f"{self['prefix']}{self['content']}{self['postfix']}"

    def __repr__(self) -> str:
        return f"Message({self['role']!r}, {self['content']!r})"


def normalize_role(role: str) -> str:
    lowered = role.strip().lower()
    lowered = _ROLE_ALIASES.get(lowered, lowered)
    if lowered not in ROLES:
        raise ValueError(f"unknown role {role!r}: use 'system', 'user' or 'bot'")
    return lowered


@dataclass(slots=True)
class PromptPlan:
    """The prompt for the next reply: its tokens and which messages it left out."""

    tokens: list[int]
    messages: list[Message]
    dropped: int


class Reply:
    """A bot reply being generated. Iterate it for ``TokenEvent``s; when iteration ends
    (finished, stopped with ``cancel()``, or closed early) the reply is recorded in the Thread,
    partial text included."""

    def __init__(
        self, thread: Thread, generation: Generation, prefix: str, continues: Message | None
    ):
        self.thread = thread
        self.generation = generation
        self.prefix = prefix
        self.continues = continues
        self.message: Message | None = None
        # Set by reroll and branch: the version of the reply this one replaces.
        self.replaced: Message | None = None
        self.branch_text = ""

    @property
    def result(self) -> GenerationResult:
        return self.generation.result

    def cancel(self) -> None:
        self.generation.cancel()

    def __iter__(self) -> Iterator[TokenEvent]:
        try:
            yield from self.generation
        finally:
            self.message = self.thread._record_reply(self)

    def run(self) -> str:
        for _ in self:
            pass
        assert self.message is not None
        return self.message["content"]


class Thread:
    def __init__(
        self,
        model: Backend,
        format: Format | dict | str,
        sampler: SamplerSettings | None = None,
        messages: list[dict] | None = None,
    ) -> None:
        self.model = model
        self.format = resolve_format(format, model)
        if sampler is None:
            from . import samplers

            sampler = samplers.load("DefaultSampling")
        self.sampler = sampler
        if messages is None:
            system_prompt = self.format.system_prompt
            messages = [self.create_message("system", system_prompt)] if system_prompt else []
        self.messages: list[Message] = [self._as_message(m) for m in messages]
        self._initial = [Message(**m) for m in self.messages]
        self._text_tokens: dict[str, list[int]] = {}
        self._content_tokens: dict[str, list[int]] = {}
        self.last_plan: PromptPlan | None = None
        self.last_result: GenerationResult | None = None

    # --- messages ------------------------------------------------------------------------------

    def create_message(self, role: str, content: str) -> Message:
        role = normalize_role(role)
        prefix, postfix = self.format.message_parts(_format_role(role))
        return Message(role, content, prefix, postfix)

    def add_message(self, role: str, content: str) -> None:
        self.messages.append(self.create_message(role, content))

    def _as_message(self, message: dict) -> Message:
        if isinstance(message, Message):
            message["role"] = normalize_role(message["role"])
            return message
        return self.create_message(message["role"], message["content"])

    def reset(self) -> None:
        """Back to the messages the Thread started with (usually the system prompt)."""
        self.messages = [Message(**m) for m in self._initial]

    def set_system_prompt(self, text: str) -> None:
        """Replace the leading system message with ``text`` ('' removes it); ``reset()`` then
        returns to this system prompt."""
        rest = list(self.messages)
        while rest and rest[0]["role"] == "system":
            rest.pop(0)
        head = [self.create_message("system", text)] if text else []
        self.messages = head + rest
        self._initial = [Message(**m) for m in head]

    def set_format(self, format: Format | dict | str) -> None:
        self.format = resolve_format(format, self.model)
        self._text_tokens.clear()
        for message in self.messages:
            message["prefix"], message["postfix"] = self.format.message_parts(
                _format_role(message["role"])
            )

    def as_string(self) -> str:
        return "".join(message.as_string() for message in self.messages)

    # --- tokens --------------------------------------------------------------------------------

    def _format_text_tokens(self, text: str) -> list[int]:
        tokens = self._text_tokens.get(text)
        if tokens is None:
            tokens = self.model.tokenize(text, add_bos=False, special=True)
            self._text_tokens[text] = tokens
        return tokens

    def content_tokens(self, text: str) -> list[int]:
        """User-written text: special tokens off, so ``<|im_end|>`` typed in a message is text.
        A reply's content maps to the exact tokens the model generated for it."""
        tokens = self._content_tokens.get(text)
        if tokens is None:
            tokens = self.model.tokenize(text, add_bos=False, special=False)
            self._content_tokens[text] = tokens
        return tokens

    def remember_tokens(self, text: str, tokens: Sequence[int]) -> bool:
        """Use these token ids for ``text`` wherever it appears as content, as when a saved reply
        is reopened: the ids the model generated keep the cache matching, where tokenizing the
        text again may split it differently. Ids that do not spell ``text`` in this model's
        vocabulary (another model's) are refused; returns whether they were taken."""
        model = self.model
        if not tokens or not all(0 <= token < model.n_vocab for token in tokens):
            return False
        if model.detokenize(list(tokens)) != text:
            return False
        self._content_tokens[text] = list(tokens)
        return True

    def _tokens_for(self, messages: list[Message], add_generation_prompt: bool) -> list[int]:
        segments = self.format.segments(_render_messages(messages), add_generation_prompt)
        model = self.model
        tokens: list[int] = [model.bos_token] if model.add_bos else []
        for text, is_content in segments:
            if is_content:
                tokens.extend(self.content_tokens(text))
            elif text:
                tokens.extend(self._format_text_tokens(text))
        return tokens

    def len_messages(self) -> int:
        """All messages' length in tokens, as the model would see them untruncated."""
        return len(self._tokens_for(self.messages, add_generation_prompt=False))

    def __len__(self) -> int:
        return self.len_messages()

    def reply_room(self, sampler: SamplerSettings | None = None) -> int:
        sampler = sampler or self.sampler
        room = min(DEFAULT_REPLY_ROOM, self.model.context_length // 4)
        if sampler.max_len_tokens > 0:
            room = min(room, sampler.max_len_tokens)
        return max(1, room)

    def plan_prompt(self, prefix: str = "", continues: Message | None = None) -> PromptPlan:
        """The prompt tokens for the next bot reply, leaving out the oldest messages after the
        system prompt(s) until it fits with room for the reply. The newest message stays."""
        messages = [m for m in self.messages if m is not continues]
        tail = self.content_tokens(prefix) if prefix else []
        if continues is not None:
            tail = self.content_tokens(continues["content"]) + tail
        limit = self.model.context_length
        room = self.reply_room()
        droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]

        def without_oldest(n: int) -> tuple[list[Message], list[int]]:
            left_out = set(droppable[:n])
            kept = [m for i, m in enumerate(messages) if i not in left_out]
            return kept, self._tokens_for(kept, add_generation_prompt=True) + tail

        dropped = 0
        kept, tokens = without_oldest(0)
        if len(tokens) + room > limit:
            # The fewest messages to leave out. The prompt only shrinks as more are left out,
            # so halving the range renders the conversation a handful of times, where dropping
            # one message at a time would render it once per message dropped (a long chat's
            # turn would then cost more with every turn).
            low, high = 1, len(droppable)
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

    def inference_str_from_messages(self) -> str:
        """The prompt text for the next reply, truncated to fit, as the model will see it."""
        plan = self.plan_prompt()
        return self.format.render(_render_messages(plan.messages), add_generation_prompt=True)

    # --- replies -------------------------------------------------------------------------------

    def start_reply(
        self,
        prefix: str = "",
        *,
        continue_last: bool = False,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
    ) -> Reply:
        """Begin the bot's next reply. ``prefix`` starts it (and is part of it);
        ``continue_last`` extends the last bot message instead of adding a new one."""
        continues = None
        if continue_last:
            if not self.messages or self.messages[-1]["role"] != "bot":
                raise EzChatError("there is no bot reply to continue; send a message first")
            continues = self.messages[-1]
        plan = self.plan_prompt(prefix, continues)
        stops: list[str | int] = list(self.format.stops)
        generation = self.model.start(
            plan.tokens, stops, sampler or self.sampler, candidates, allow_shift=plan.dropped > 0
        )
        return Reply(self, generation, prefix, continues)

    def _record_reply(self, reply: Reply) -> Message:
        result = reply.result
        self.last_result = result
        if reply.continues is not None:
            message = reply.continues
            before = message["content"]
            message["content"] = before + reply.prefix + result.text
            head = self.content_tokens(before) + (
                self.content_tokens(reply.prefix) if reply.prefix else []
            )
        else:
            message = self.create_message("bot", reply.prefix + result.text)
            message.reply_prefix = reply.prefix
            self.messages.append(message)
            head = self.content_tokens(reply.prefix) if reply.prefix else []
        # Keep the generated tokens for this text so the next prompt matches the cache exactly.
        if result.stop_reason != "stop_string":
            self._content_tokens[message["content"]] = head + result.tokens
        return message

    def send(self, prompt: str) -> str:
        """Add ``prompt`` as a user message, generate the reply, add it, and return it."""
        self.add_message("user", prompt)
        return self.start_reply().run()

    def _last_bot_message(self, action: str) -> Message:
        if not self.messages or self.messages[-1]["role"] != "bot":
            raise EzChatError(f"there is no bot reply to {action}; send a message first")
        return self.messages[-1]

    def start_reroll(
        self,
        *,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
        prefix: str | None = None,
    ) -> Reply:
        """Replace the last bot reply with a new one to the same prompt. The prompt is already
        in the cache, so only the new reply's tokens are evaluated. The new reply starts with
        ``prefix``; by default with the prefix the user wrote for the one it replaces. The
        removed message is returned in ``Reply.replaced`` for callers that keep earlier
        versions."""
        replaced = self._last_bot_message("reroll")
        if prefix is None:
            prefix = replaced.reply_prefix if isinstance(replaced, Message) else ""
        self.messages.pop()
        try:
            reply = self.start_reply(prefix, candidates=candidates, sampler=sampler)
        except BaseException:
            self.messages.append(replaced)
            raise
        reply.replaced = replaced
        return reply

    def reply_tokens(self, message: Message) -> list[int]:
        """The tokens of a message's content as the prompt holds them (for a reply: the tokens
        the model generated)."""
        return list(self.content_tokens(message["content"]))

    def tokens_before(self, index: int, position: int) -> list[int]:
        """The prompt tokens that led to token ``position`` of the reply ``messages[index]``:
        the conversation before it, the bot header, and the reply's first ``position`` tokens."""
        message = self.messages[index]
        if message["role"] != "bot":
            raise EzChatError("only a bot reply has candidates; pick a bot message")
        head = self._tokens_for(self.messages[:index], add_generation_prompt=True)
        return head + self.reply_tokens(message)[:position]

    def candidates_at(self, index: int, position: int, k: int = 10) -> list:
        """The top-k candidates the model weighed for token ``position`` of reply ``index``
        (full-softmax probabilities). Only the tokens the cache lacks are evaluated."""
        return self.model.candidates(self.tokens_before(index, position), k)

    def start_branch(
        self,
        position: int,
        token: int,
        *,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
    ) -> Reply:
        """Rewrite the last bot reply from token ``position`` on: keep its first ``position``
        tokens, put ``token`` in place of the one the model chose, and generate the rest. The
        replaced message is returned in ``Reply.replaced``."""
        message = self._last_bot_message("branch")
        kept = self.reply_tokens(message)[:position] + [token]
        replaced = Message(**message)
        text = self.model.detokenize(kept)
        self._content_tokens[text] = kept
        message["content"] = text
        try:
            reply = self.start_reply(continue_last=True, candidates=candidates, sampler=sampler)
        except BaseException:
            message.update(replaced)
            raise
        reply.replaced = replaced
        reply.branch_text = text
        return reply

    def interact(self, color: bool = True, header: str | None = None, stream: bool = True) -> None:
        """Chat in the terminal (prompt-toolkit); see ezchat.repl."""
        if _terminal_chat is None:
            raise EzChatError("no terminal chat is registered; `import ezchat` registers the REPL")
        _terminal_chat(self, color=color, header=header, stream=stream)

    # --- stats ---------------------------------------------------------------------------------

    def print_stats(self, file: Any = None) -> None:
        file = file or sys.stdout
        used = self.len_messages()
        limit = self.model.context_length
        print(f"{used} / {limit} tokens", file=file)
        print(f"{used / limit:.0%} of context used", file=file)
        print(f"{len(self.messages)} messages", file=file)
        file.flush()


def _format_role(role: str) -> str:
    return "assistant" if role == "bot" else role


def _render_messages(messages: list[Message]) -> list[dict[str, str]]:
    return [{"role": _format_role(m["role"]), "content": m["content"]} for m in messages]


def register_terminal_chat(run: Callable[..., None]) -> None:
    """What ``Thread.interact`` runs: ``run(thread, color=..., header=..., stream=...)``."""
    global _terminal_chat
    _terminal_chat = run


def resolve_format(format: Format | dict | str, model: Backend) -> Format:
    """A Format from a Format, an easy-llama style dict, a name, or ``"auto"`` (the GGUF's own
    chat template, falling back to chatml when the file has none)."""
    if isinstance(format, str) and format.lower() == "auto":
        # The Thread adds the BOS token when the GGUF asks for it, and the format strips the
        # template's own copy; when the GGUF does not ask for one, the template gets none either
        # (SmolLM2's "BOS" is <|im_start|>, which a template must not receive as bos_token).
        auto = formats_module.from_metadata(
            model.metadata,
            bos_token=model.token_text(model.bos_token) if model.add_bos else "",
            eos_token=model.token_text(model.eos_token),
        )
        return auto if auto is not None else formats_module.load("chatml")
    resolved = formats_module.coerce(format)
    if resolved.name == "server" and model.runs_in_process:
        raise EzChatError(
            "the 'server' format hands the chat to a server's own template; a local model "
            "needs a real format: use 'auto' or a name from `ezchat formats`"
        )
    return resolved
