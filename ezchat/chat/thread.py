"""``Thread``: a conversation with a Model in a prompt format.

The Thread turns its messages into prompt tokens so that every turn extends the previous
turn's tokens exactly (user text tokenized with special tokens off, each reply kept as the
very tokens the model generated), which lets the Model evaluate only what is new. When the
conversation outgrows the context, the oldest messages after the system prompt are left out
of the prompt; ``messages`` still holds all of them.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import EzChatError, PromptTooLongError
from . import auto_format
from . import formats as formats_module
from . import reasoning as reasoning_module
from .context_stats import ContextStats, context_stats
from .reply import Reply, reroll_sampler
from .reply_kind import ReplyKind
from .roles import normalize_role, template_name
from .samplers import SamplerSettings

if TYPE_CHECKING:
    # Types only: the conversation layer talks to any Backend and never loads llama.cpp itself.
    from ..backends.base import Backend
    from ..engine.results import GenerationResult
    from .formats import Format

# The terminal chat is an interface (ezchat.repl), a layer above this one: the package registers
# it (register_terminal_chat) so that the conversation never imports an interface.
_terminal_chat: Callable[..., None] | None = None
# A prompt leaves at least this much of the context for the reply, unless the sampler's
# max_len_tokens asks for less.
DEFAULT_REPLY_ROOM = 1024


class Message(dict):
    """A dict with ``role``, ``prefix``, ``content`` and ``postfix``; a reply that reasoned
    has its reasoning apart from its answer (``content``) in ``reasoning``."""

    # For a bot reply: the start the user wrote for it (a prefix), which a reroll keeps.
    reply_prefix = ""

    def __init__(self, role: str, content: str, prefix: str = "", postfix: str = "", **extra: Any):
        super().__init__(role=role, prefix=prefix, content=content, postfix=postfix, **extra)

    def as_string(self) -> str:
        return f"{self['prefix']}{self['content']}{self['postfix']}"

    def __repr__(self) -> str:
        return f"Message({self['role']!r}, {self['content']!r})"


@dataclass(slots=True)
class PromptPlan:
    """The prompt for the next reply: its tokens and which messages it left out."""

    tokens: list[int]
    messages: list[Message]
    dropped: int


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
        # Which format, why (for auto), and whether its markers are this model's own tokens.
        self.format_choice = auto_format.explain(format, self.format, model)
        if sampler is None:
            from . import samplers

            sampler = samplers.load_default()
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
        # The chat's thinking switch for templates that take one (None: the template's own
        # default); see set_thinking.
        self.thinking: bool | None = None
        self._setup_reasoning()
        # how many times start(REROLL) wrote the last reply again: the next reroll's seed
        self._rerolls = 0

    # --- messages ------------------------------------------------------------------------------

    def create_message(self, role: str, content: str) -> Message:
        role = normalize_role(role)
        prefix, postfix = self.format.message_parts(template_name(role))
        return Message(role, content, prefix, postfix)

    def add_message(self, role: str, content: str) -> None:
        self.messages.append(self.create_message(role, content))

    def message_from_dict(self, data: dict) -> Message:
        """A Message in this Thread's format from a plain ``{"role", "content"}`` dict (with
        ``reasoning`` for a reply that has one)."""
        return self._as_message(data)

    def _as_message(self, message: dict) -> Message:
        if isinstance(message, Message):
            message["role"] = normalize_role(message["role"])
            return message
        made = self.create_message(message["role"], message["content"])
        if message.get("reasoning"):
            made["reasoning"] = message["reasoning"]
        return made

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
        self._setup_reasoning()
        self.format_choice = auto_format.explain(format, self.format, self.model)
        self._text_tokens.clear()
        for message in self.messages:
            message["prefix"], message["postfix"] = self.format.message_parts(
                template_name(message["role"])
            )

    def as_string(self) -> str:
        return "".join(message.as_string() for message in self.messages)

    # --- reasoning -----------------------------------------------------------------------------

    def set_thinking(self, enabled: bool | None) -> None:
        """Switch the model's thinking on or off for templates that take ``enable_thinking``
        (or its kin, such as gpt-oss's ``reasoning_effort``); None leaves the template's own
        default. Prefix formats have no such switch."""
        self.thinking = enabled
        self._setup_reasoning()

    @property
    def has_thinking_switch(self) -> bool:
        """Whether the format's template takes ``enable_thinking`` or one of its kin."""
        return reasoning_module.has_thinking_switch(self.format.template or "")

    def switch_thinking(self, enabled: bool | None) -> str:
        """``set_thinking`` for a person's command: refused in one line where the format has no
        switch; returns what the chat does now, to show."""
        if not self.has_thinking_switch:
            raise EzChatError(
                f"format {self.format.name!r} has no thinking switch; its template does not "
                "take enable_thinking (a reasoning model's own template, with format auto, does)"
            )
        self.set_thinking(enabled)
        return f"thinking {reasoning_module.thinking_label(enabled)}"

    def _setup_reasoning(self) -> None:
        fmt = self.format
        variables = reasoning_module.thinking_variables(fmt.template or "", self.thinking)
        if variables or fmt.template_variables:
            fmt = copy.copy(fmt)  # the switch is this chat's, not every user's of the format
            fmt.template_variables = variables
            self.format = fmt
        self.reasoning_markers = reasoning_module.format_markers(fmt)
        self._prompt_opens = reasoning_module.prompt_opens(fmt, self.reasoning_markers)

    def reasoning_splitter(self) -> reasoning_module.ReasoningSplitter:
        return reasoning_module.ReasoningSplitter(self.reasoning_markers, self._prompt_opens)

    def reply_text(self, message: Message) -> str:
        """The text the model wrote for a message: its reasoning, with the markers, and its
        answer, as ``content`` alone is for a message that has no reasoning."""
        thought = reasoning_module.message_reasoning(message)
        if not thought:
            return message["content"]
        return reasoning_module.join_reply(
            thought, message["content"], self.reasoning_markers, self._prompt_opens
        )

    def _set_reply_text(self, message: Message, text: str) -> None:
        thought, answer = reasoning_module.split_reply(
            text, self.reasoning_markers, self._prompt_opens
        )
        message["content"] = answer
        if thought:
            message["reasoning"] = thought
        else:
            message.pop("reasoning", None)

    def _prompt_content(self, message: Message) -> str:
        """A message's text in a later prompt. A reply's reasoning is left out unless the
        format keeps it, as the reasoning models' own templates do; a prefix format whose
        reply prefix opens the block gets it closed, empty, before the answer."""
        if message["role"] != "bot" or not reasoning_module.message_reasoning(message):
            return message["content"]
        if self.format.keep_reasoning:
            return self.reply_text(message)
        markers = self.reasoning_markers
        if self._prompt_opens and markers is not None and not self.format.is_jinja:
            return markers.end + markers.answer_start + message["content"]
        return message["content"].lstrip()

    def _render_messages(self, messages: list[Message]) -> list[dict[str, str]]:
        rendered = []
        for message in messages:
            item = {
                "role": template_name(message["role"]),
                "content": self._prompt_content(message),
            }
            thought = reasoning_module.message_reasoning(message)
            if thought and self.format.is_jinja and not self.format.keep_reasoning:
                # as llama-server hands a reply's reasoning to a template: the template decides
                # which turns keep it (Qwen3 those after the last user message, DeepSeek-R1 none)
                item["reasoning_content"] = reasoning_module.shown(thought)
            rendered.append(item)
        return rendered

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
        segments = self.format.segments(self._render_messages(messages), add_generation_prompt)
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
            tail = self.content_tokens(self.reply_text(continues)) + tail
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
        return self.format.render(self._render_messages(plan.messages), add_generation_prompt=True)

    # --- replies -------------------------------------------------------------------------------

    def start(
        self,
        kind: ReplyKind | str = ReplyKind.REPLY,
        *,
        prefix: str = "",
        position: int = 0,
        token: int | None = None,
        version: int | None = None,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
    ) -> Reply:
        """Begin a reply of any ``kind`` (see ReplyKind): the one entry point the app and the
        REPL use. ``prefix`` starts a new reply; ``position`` and ``token`` say where a branch
        takes another token; ``version`` numbers a reroll among the versions of its reply (by
        default, the rerolls this Thread made of it) and picks its seed (reroll_sampler)."""
        kind = ReplyKind(kind)
        sampler = sampler or self.sampler
        if kind is ReplyKind.REROLL:
            if version is None:
                version = self._rerolls + 1
            reply = self.start_reroll(
                candidates=candidates, sampler=reroll_sampler(sampler, version)
            )
            self._rerolls = version
            return reply
        if kind is ReplyKind.BRANCH:
            if token is None:
                raise EzChatError("a branch needs the token to put at its position")
            return self.start_branch(position, token, candidates=candidates, sampler=sampler)
        if kind is ReplyKind.CONTINUE:
            return self.start_reply(continue_last=True, candidates=candidates, sampler=sampler)
        return self.start_reply(prefix, candidates=candidates, sampler=sampler)

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
        if continues is None:
            self._rerolls = 0  # a new reply has had no rerolls yet
        return Reply(self, generation, prefix, continues)

    def _record_reply(self, reply: Reply) -> Message:
        result = reply.result
        self.last_result = result
        if reply.continues is not None:
            message = reply.continues
            before = self.reply_text(message)
            self._set_reply_text(message, before + reply.prefix + result.text)
            head = self.content_tokens(before) + (
                self.content_tokens(reply.prefix) if reply.prefix else []
            )
        else:
            message = self.create_message("bot", "")
            self._set_reply_text(message, reply.prefix + result.text)
            message.reply_prefix = reply.prefix
            self.messages.append(message)
            head = self.content_tokens(reply.prefix) if reply.prefix else []
        # Keep the generated tokens for this text so the next prompt matches the cache exactly
        # (and a reply's token positions, reasoning included, stay those the model wrote).
        if result.stop_reason != "stop_string":
            self._content_tokens[self.reply_text(message)] = head + result.tokens
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
        replaced = self._last_bot_message(ReplyKind.REROLL)
        if prefix is None:
            prefix = replaced.reply_prefix if isinstance(replaced, Message) else ""
        self.messages.pop()
        try:
            reply = self.start_reply(prefix, candidates=candidates, sampler=sampler)
        except BaseException:
            self.messages.append(replaced)
            raise
        reply.replaced = replaced
        reply.kind = ReplyKind.REROLL
        return reply

    def reply_tokens(self, message: Message) -> list[int]:
        """The tokens of a message's content as the prompt holds them (for a reply: the tokens
        the model generated, its reasoning included)."""
        return list(self.content_tokens(self.reply_text(message)))

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
        message = self._last_bot_message(ReplyKind.BRANCH)
        kept = self.reply_tokens(message)[:position] + [token]
        replaced = Message(**message)
        text = self.model.detokenize(kept)
        self._content_tokens[text] = kept
        self._set_reply_text(message, text)
        try:
            reply = self.start_reply(continue_last=True, candidates=candidates, sampler=sampler)
        except BaseException:
            message.clear()
            message.update(replaced)
            raise
        reply.replaced = replaced
        reply.branch_text = text
        reply.kind = ReplyKind.BRANCH
        return reply

    def interact(self, color: bool = True, header: str | None = None, stream: bool = True) -> None:
        """Chat in the terminal (prompt-toolkit); see ezchat.repl."""
        if _terminal_chat is None:
            raise EzChatError("no terminal chat is registered; `import ezchat` registers the REPL")
        _terminal_chat(self, color=color, header=header, stream=stream)

    # --- stats ---------------------------------------------------------------------------------

    def context_stats(self) -> ContextStats:
        """What the context window holds, what was left out, and the whole history's size."""
        return context_stats(self)

    def print_stats(self, file: Any = None) -> None:
        file = file or sys.stdout
        for line in self.context_stats().lines():
            print(line, file=file)
        file.flush()


def register_terminal_chat(run: Callable[..., None]) -> None:
    """What ``Thread.interact`` runs: ``run(thread, color=..., header=..., stream=...)``."""
    global _terminal_chat
    _terminal_chat = run


def resolve_format(format: Format | dict | str, model: Backend) -> Format:
    """A Format from a Format, an easy-llama style dict, a name, or ``"auto"`` (the GGUF's own
    chat template; for a file without one, the shipped format of its family: ezchat.chat.auto_format)."""
    if isinstance(format, str) and format.lower() == "auto":
        return auto_format.auto_format(model)
    resolved = formats_module.coerce(format)
    if resolved.name == "server" and model.runs_in_process:
        raise EzChatError(
            "the 'server' format hands the chat to a server's own template; a local model "
            "needs a real format: use 'auto' or a name from `ezchat formats`"
        )
    return resolved
