"""``Thread``: a conversation with a Model in a prompt format, kept as a tree.

Every message is a node of the Thread's ``tree`` (ezchat.chat.tree); ``messages`` is the
active path, a list-like view (ezchat.chat.path), so code written for easy-llama's list of
messages keeps working while rerolls, branches, continues and edits become siblings instead
of overwriting. How messages become prompt tokens is ezchat.chat.prompting; how replies start
and are recorded is ezchat.chat.replies.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import EzChatError
from . import auto_format
from . import formats as formats_module
from . import reasoning as reasoning_module
from .context_stats import ContextStats, context_stats
from .grow import DEFAULT_GROW, GrowingReplies, start_grow
from .message import Message
from .path import MessagePath, replace_path
from .prompting import DEFAULT_REPLY_ROOM, PromptPlan, PromptTokens
from .replies import ReplyStarting
from .roles import normalize_role, template_name
from .samplers import SamplerSettings
from .tree import Made, Node, Origin, Tree

if TYPE_CHECKING:
    # Types only: the conversation layer talks to any Backend and never loads llama.cpp itself.
    from ..backends.base import Backend
    from ..engine.results import EvalReport, GenerationResult
    from .formats import Format

__all__ = ["DEFAULT_REPLY_ROOM", "Message", "PromptPlan", "Thread", "resolve_format"]

# The terminal chat is an interface (ezchat.repl), a layer above this one: the package registers
# it (register_terminal_chat) so that the conversation never imports an interface.
_terminal_chat: Callable[..., None] | None = None


class Thread(PromptTokens, ReplyStarting):
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
        self.tree = Tree()
        self._path = MessagePath(self.tree, self._as_message)
        self._path.extend(messages)
        self._initial = [Message(**m) for m in self.messages]
        self._text_tokens: dict[str, list[int]] = {}
        self._content_tokens: dict[str, list[int]] = {}
        self.last_plan: PromptPlan | None = None
        self.last_result: GenerationResult | None = None
        # what the last switch of branches cost: the tokens after the common prefix
        self.last_switch: EvalReport | None = None
        # The chat's thinking switch for templates that take one (None: the template's own
        # default); see set_thinking.
        self.thinking: bool | None = None
        self._setup_reasoning()

    # --- messages ------------------------------------------------------------------------------

    @property
    def messages(self) -> MessagePath:
        """The active path's messages, as a list; changing it changes the tree."""
        return self._path

    @messages.setter
    def messages(self, messages: list[dict]) -> None:
        replace_path(self.tree, [self._as_message(m) for m in messages])

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
        """Back to the messages the Thread started with (usually the system prompt). The
        conversation stays in the tree, as a branch the next message leaves."""
        path = self.tree.path_view()
        initial = self._initial
        same = len(path) >= len(initial) and all(
            (n.role, n.content) == (m["role"], m["content"])
            for n, m in zip(path, initial, strict=False)
        )
        if same:
            self.tree.truncate_to(path[len(initial) - 1] if initial else self.tree.root)
        else:
            self.messages = [Message(**m) for m in initial]

    def set_system_prompt(self, text: str) -> None:
        """Replace the leading system message with ``text`` ('' removes it); ``reset()`` then
        returns to this system prompt. The system prompt is the chat's setting, changed in
        place rather than branched."""
        path = self.tree.path_view()
        leading = 0
        while leading < len(path) and path[leading].role == "system":
            leading += 1
        if leading and text:
            path[0].message["content"] = text
            del self.messages[1:leading]
        else:
            del self.messages[:leading]
            if text:
                self.messages.insert(0, self.create_message("system", text))
        self._initial = [Message(**self.messages[0])] if text else []

    def set_format(self, format: Format | dict | str) -> None:
        self.format = resolve_format(format, self.model)
        self._setup_reasoning()
        self.format_choice = auto_format.explain(format, self.format, self.model)
        self._text_tokens.clear()
        for node in self.tree.walk():
            message = node.message
            message["prefix"], message["postfix"] = self.format.message_parts(
                template_name(message["role"])
            )

    def as_string(self) -> str:
        return "".join(message.as_string() for message in self.messages)

    # --- the tree ------------------------------------------------------------------------------

    def node_at(self, index: int) -> Node:
        """The tree node of ``messages[index]``."""
        return self.tree.path_view()[index]

    def switch_to(self, node: Node) -> Node:
        """Make ``node``'s path the conversation (down its last-visited children); returns the
        new last node. The next prompt evaluates only the tokens after the part the old and
        new paths share (see ``evaluate_path``)."""
        return self.tree.switch_to(node)

    def switch_sibling(self, index: int, step: int) -> bool:
        """Show the sibling ``step`` places from ``messages[index]`` (-1 the one before, +1 the
        one after); the messages after it follow that branch. False at an end."""
        sibling = self.tree.sibling(self.node_at(index), step)
        if sibling is None:
            return False
        self.tree.switch_to(sibling)
        return True

    def grow(self, n: int = DEFAULT_GROW, sampler: SamplerSettings | None = None) -> GrowingReplies:
        """Grow ``n`` alternative replies at once in one batch (ezchat.chat.grow): iterate the
        handle for ``(sequence, TokenEvent)``, ``cancel()`` it to stop all n; when it ends each
        reply is a sibling node ("grown i of n"), the first one active. Sequence i samples
        with seed + i; greedy sampling grows n equal replies."""
        return start_grow(self, n, sampler)

    def edit(self, index: int, text: str) -> Node:
        """Change ``messages[index]``'s text: a sibling holding ``text``, made the end of the
        conversation (the messages after the old one stay on its branch), as the llama.cpp web
        UI forks on an edit. A system message, the chat's setting, changes in place."""
        node = self.node_at(index)
        if node.role == "system":
            node.message["content"] = text
            return node
        twin = node.message.copy_message()
        twin["content"] = text
        edited = self.tree.add_sibling(node, twin, Origin(Made.EDIT))
        self.tree.truncate_to(edited)
        return edited

    def evaluate_path(self) -> EvalReport | None:
        """Evaluate the conversation's prompt into the cache now (after a switch), so that the
        next reply starts at once; the report says how many tokens that took, the ones after
        the prefix the cache already held (None from a server, which does not say)."""
        ends_with_user = bool(self.messages) and self.messages[-1]["role"] != "bot"
        if ends_with_user:
            tokens = self.plan_prompt().tokens
        else:
            tokens = self._tokens_for(list(self.messages), add_generation_prompt=False)
        report = self.model.ingest(tokens)
        self.last_switch = report
        return report

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
