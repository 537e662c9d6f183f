"""The conversation: one ``MessageView`` per message in a scrolling column.

A bot reply streams into its view through Textual's ``MarkdownStream`` (which merges
fragments that arrive faster than it can render) and ends with one full render. The column
is anchored to the bottom when a turn starts, so it follows the stream; scrolling up releases
the anchor until the user scrolls back down.

What a message holds came from the user, the model or an imported chat: its view shows it
through ``visible`` (terminal controls as pictures, see ezchat.safetext), while ``content``
keeps the raw text. Markdown does not read Textual markup, so ``[@click=...]`` stays text.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from ..safetext import VisibleStream, visible
from .reasoning_block import ReasoningBlock

ROLE_NAMES = {"user": "You", "bot": "Bot", "system": "System"}


class MessageView(Vertical, can_focus=True):
    """One message: a role line (with "2/3" when it has several versions) and its Markdown."""

    BINDINGS = [
        Binding("left", "version(-1)", "Older version", id="message.version_previous"),
        Binding("right", "version(1)", "Newer version", id="message.version_next"),
        Binding("e", "request('edit')", "Edit", id="message.edit"),
        Binding("delete,d", "request('delete')", "Delete", id="message.delete"),
        Binding("y", "request('copy')", "Copy", id="message.copy"),
        Binding("s", "request('insert_system')", "Insert system", id="message.insert_system"),
        Binding("t", "request('tokens')", "Tokens", id="message.tokens"),
        Binding("r", "toggle_reasoning", "Reasoning", id="message.reasoning"),
    ]

    version_label: reactive[str] = reactive("")

    class Requested(Message):
        """The user asked for ``action`` on this message; the app carries it out."""

        def __init__(self, view: MessageView, action: str, step: int = 0) -> None:
            super().__init__()
            self.view = view
            self.action = action
            self.step = step

    def __init__(
        self, index: int, role: str, content: str, version_label: str = "", reasoning: str = ""
    ) -> None:
        super().__init__(classes=f"message -{role}")
        self.index = index
        self.role = role
        self.content = content
        self.reasoning = reasoning
        self._stream: MarkdownStream | None = None
        self._visible_stream = VisibleStream()
        self.set_reactive(MessageView.version_label, version_label)

    def compose(self):
        yield Static(self._role_line(), classes="role")
        yield ReasoningBlock(self.reasoning)
        yield Markdown(visible(self._answer(self.content)), classes="body")

    def _answer(self, content: str) -> str:
        # below its reasoning, an answer's leading blank lines are the gap the block already is
        return content.lstrip() if self.reasoning else content

    @property
    def reasoning_block(self) -> ReasoningBlock:
        return self.query_one(ReasoningBlock)

    def action_toggle_reasoning(self) -> None:
        self.reasoning_block.toggle()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # the reasoning key is offered (and shown in the footer) only where there is some
        if action == "toggle_reasoning":
            return bool(self.reasoning.strip())
        return True

    def _role_line(self) -> Content:
        # an imported chat's role is outside text too; Content is never read as markup
        name = visible(ROLE_NAMES.get(self.role, self.role))
        return Content(f"{name}  ◀ {self.version_label} ▶" if self.version_label else name)

    def watch_version_label(self) -> None:
        if self.is_mounted:
            self.query_one(".role", Static).update(self._role_line())

    @property
    def body(self) -> Markdown:
        return self.query_one(".body", Markdown)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    async def set_content(
        self, content: str, version_label: str | None = None, reasoning: str | None = None
    ) -> None:
        self.content = content
        if version_label is not None:
            self.version_label = version_label
        if reasoning is not None:
            self.reasoning = reasoning
            self.reasoning_block.set_text(reasoning)
        await self.body.update(visible(self._answer(content)))

    async def begin_stream(self, head: str, reasoning_head: str = "") -> None:
        """Show ``head`` (and the reasoning before it) and get ready to append the reply's
        text as it comes."""
        self.content = head
        self.reasoning = reasoning_head
        self.reasoning_block.set_text(reasoning_head)
        self._visible_stream = VisibleStream()
        await self.body.update(visible(head))
        self._stream = Markdown.get_stream(self.body)

    def write_reasoning(self, text: str, thinking: bool, tokens: int) -> None:
        block = self.reasoning_block
        if text or thinking != block.thinking or tokens != block.tokens:
            self.reasoning += text
            block.stream(text, thinking, tokens)

    async def write(self, text: str) -> None:
        if self._stream is not None and text:
            self.content += text
            shown = self._visible_stream.push(text)
            if shown:
                await self._stream.write(shown)

    async def end_stream(
        self, final: str, version_label: str = "", reasoning: str | None = None
    ) -> None:
        """Stop streaming and render the whole reply once more (a streamed render can differ
        from a full one, e.g. a code fence that closed late)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.set_content(final, version_label, reasoning)

    def action_version(self, step: int) -> None:
        self.post_message(self.Requested(self, "version", step))

    def action_request(self, action: str) -> None:
        self.post_message(self.Requested(self, action))


class ConversationView(VerticalScroll, can_focus=False):
    """The column of messages."""

    async def show(self, views: list[MessageView]) -> None:
        await self.remove_children()
        await self.mount_all(views)
        self.anchor()

    async def add(self, view: MessageView) -> None:
        await self.mount(view)
        self.anchor()

    @property
    def views(self) -> list[MessageView]:
        return list(self.query_children(MessageView))

    def view_at(self, index: int) -> MessageView | None:
        for view in self.query_children(MessageView):
            if view.index == index:
                return view
        return None
