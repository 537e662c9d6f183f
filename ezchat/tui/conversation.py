"""The conversation: one ``MessageView`` per message in a scrolling column.

A bot reply streams into its view through Textual's ``MarkdownStream`` (which merges
fragments that arrive faster than it can render) and ends with one full render. The column
is anchored to the bottom when a turn starts, so it follows the stream; scrolling up releases
the anchor until the user scrolls back down.

What a message holds came from the user, the model or an imported chat: its view shows it
through ``visible`` (terminal controls as pictures, see ezchat.safetext), while ``content``
keeps the raw text. Markdown does not read Textual markup, so ``[@click=...]`` stays text.

Both widgets draw only what the screen shows. A message longer than the app's
``max_markdown_chars``, or holding a table longer than ``MAX_MARKDOWN_TABLE_ROWS`` (see
markdown_limits), is shown as plain text by ``PlainBody`` (Textual's Markdown builds
widgets for the whole text at once, minutes for a 10,000-row table), also when a streamed reply
grows past the limit. The column mounts only the newest messages that fill a few screens, and
earlier ones, a batch at a time, as the user scrolls up to them. Home shows the first messages
instead (the mounted ones are a window on the chat), later ones come as the user scrolls down,
and End, or a new message, shows the newest again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from ..safetext import VisibleStream, visible
from ..settings.config import MAX_MARKDOWN_CHARS
from . import heap
from .conversation_window import (
    BATCH_MESSAGES,
    FILL_PAUSE_SECONDS,
    SCREENS_AHEAD,
    WindowMoves,
)
from .markdown_limits import plain_reason
from .plainbody import PlainBody
from .reasoning_block import ReasoningBlock

ROLE_NAMES = {"user": "You", "bot": "Bot", "system": "System"}
WHOLE_CHAT_AT_ONCE = 4  # messages


class MessageView(Vertical, can_focus=True):
    """One message: a role line (with "2/3" when it has several versions) and its body:
    Markdown, or plain text when the message is longer than the app's Markdown limit."""

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
        self._plain_streaming = False  # a reply streaming into a PlainBody
        # drawn as plain text until finish_draft (the column's fill sets it, before mounting)
        self.draft = False
        self.set_reactive(MessageView.version_label, version_label)

    @property
    def markdown_limit(self) -> int:
        """The longest message (in characters) shown as Markdown: the app's setting."""
        return getattr(self.app, "max_markdown_chars", MAX_MARKDOWN_CHARS)

    def _fits_markdown(self, text: str) -> bool:
        return not plain_reason(text, self.markdown_limit)

    def compose(self):
        yield Static(self._role_line(), classes="role")
        yield ReasoningBlock(self.reasoning)
        yield self._make_body(self._answer(self.content))

    def _make_body(self, answer: str) -> Markdown | PlainBody:
        if self._fits_markdown(answer) and not self.draft:
            return Markdown(visible(answer), classes="body")
        return PlainBody(visible(answer), classes="body")

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
        line = f"{name}  ◀ {self.version_label} ▶" if self.version_label else name
        reason = plain_reason(self.content, self.markdown_limit)
        if reason:
            line += f"  · plain text ({reason})"
        return Content(line)

    def _update_role_line(self) -> None:
        if self.is_mounted:
            self.query_one(".role", Static).update(self._role_line())

    def watch_version_label(self) -> None:
        self._update_role_line()

    @property
    def body(self) -> Markdown | PlainBody:
        return self.query_one(".body")

    @property
    def is_plain(self) -> bool:
        return isinstance(self.body, PlainBody)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    async def finish_draft(self) -> None:
        """A draft's text as Markdown, the way it is shown for good."""
        if self.draft:
            self.draft = False
            await self._replace_body(self._answer(self.content))

    async def _replace_body(self, answer: str) -> None:
        """Show ``answer`` in the body, changing the kind of body when it crosses the limit."""
        body = self.body
        if (self._fits_markdown(answer) and not self.draft) == isinstance(body, Markdown):
            if isinstance(body, Markdown):
                await body.update(visible(answer))
            else:
                body.update(visible(answer))
        else:
            await body.remove()
            await self.mount(self._make_body(answer))
        self._update_role_line()

    async def set_content(
        self, content: str, version_label: str | None = None, reasoning: str | None = None
    ) -> None:
        self.content = content
        if version_label is not None:
            self.version_label = version_label
        if reasoning is not None:
            self.reasoning = reasoning
            self.reasoning_block.set_text(reasoning)
        await self._replace_body(self._answer(content))

    async def begin_stream(self, head: str, reasoning_head: str = "") -> None:
        """Show ``head`` (and the reasoning before it) and get ready to append the reply's
        text as it comes."""
        self.content = head
        self.reasoning = reasoning_head
        self.reasoning_block.set_text(reasoning_head)
        self._visible_stream = VisibleStream()
        await self._replace_body(head)
        body = self.body
        self._stream = Markdown.get_stream(body) if isinstance(body, Markdown) else None
        self._plain_streaming = isinstance(body, PlainBody)

    @property
    def _receiving(self) -> bool:
        return self._stream is not None or self._plain_streaming

    def write_reasoning(self, text: str, thinking: bool, tokens: int) -> None:
        block = self.reasoning_block
        if text or thinking != block.thinking or tokens != block.tokens:
            self.reasoning += text
            block.stream(text, thinking, tokens)

    async def write(self, text: str) -> None:
        if not (self._receiving and text):
            return
        shown_before = self.content
        self.content += text
        shown = self._visible_stream.push(text)
        if self._stream is not None and not self._fits_markdown(self.content):
            # past the limit: the reply so far, and the rest as it comes, as plain text
            await self._stream.stop()
            self._stream = None
            self._plain_streaming = True
            await self.body.remove()
            await self.mount(PlainBody(visible(shown_before.removesuffix("\r")), classes="body"))
            self._update_role_line()
        if not shown:
            return
        body = self.body
        if isinstance(body, PlainBody):
            body.append(shown)
        elif self._stream is not None:
            await self._stream.write(shown)

    async def end_stream(
        self, final: str, version_label: str = "", reasoning: str | None = None
    ) -> None:
        """Stop streaming and render the whole reply once more (a streamed render can differ
        from a full one, e.g. a code fence that closed late)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self._plain_streaming = False
        await self.set_content(final, version_label, reasoning)

    def action_version(self, step: int) -> None:
        self.post_message(self.Requested(self, "version", step))

    def action_request(self, action: str) -> None:
        self.post_message(self.Requested(self, action))

    def estimated_rows(self, width: int) -> int:
        """About how many rows this message takes at ``width`` cells, without rendering it."""
        width = max(width - 4, 10)  # the border and padding
        text = self.content
        return 2 + text.count("\n") + len(text) // width


class ConversationView(WindowMoves, VerticalScroll, can_focus=False):
    """The column of messages. Only the newest are mounted at first; earlier ones are
    mounted a batch at a time when the user scrolls up to the first mounted one."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._make_view: Callable[[int], MessageView] | None = None
        self._first_mounted = 0  # the index of the earliest message mounted
        self._end_mounted = 0  # one past the index of the latest message mounted
        self._count = 0  # the messages in the chat
        self._loading_earlier = False
        self._shown = 0  # counts calls to show: a fill from an earlier one stops
        self.filling = False  # the screen is being filled (and drafts drawn) after the first paint
        self._drafts: list[MessageView] = []  # mounted as plain text, Markdown to come
        self._typed_at = 0.0  # time.monotonic() when the user last typed in the prompt

    async def show(self, count: int, make_view: Callable[[int], MessageView]) -> None:
        """Show a chat of ``count`` messages, ``make_view(i)`` making message i's view: the
        newest at once, then, one message a frame, earlier ones until the screen is full."""
        self._make_view = make_view
        self._shown += 1
        self._count = self._end_mounted = count
        self._drafts = []
        await self.remove_children()
        heap.settle()
        # the newest message only, or a whole chat that small (it costs little, and the chat
        # is complete on screen as soon as show returns)
        views = self._batch_before(count, 0) if count > WHOLE_CHAT_AT_ONCE else []
        views = views or [make_view(index) for index in range(count)]
        self._first_mounted = count - len(views)
        await self.mount_all(views)
        self.anchor()
        self.filling = self._first_mounted > 0
        if self.filling:
            self.call_after_refresh(self._fill_screen, self._shown)

    async def _fill_screen(self, shown: int) -> None:
        """Mount the message before the first mounted one, and come back after the next paint,
        until FIRST_SCREENS screens are full. A screenful of Markdown is about 100 widgets,
        a second or more of Textual's time on a slow CPU: one message a frame lets the chat
        appear at once and keys echo between messages."""
        if shown != self._shown:
            return  # shown again since; that show fills its own screen
        if self._fill_after_paint(partial(self._fill_screen, shown)):
            return
        if self._fill_held(partial(self._fill_screen, shown)):
            return
        if self._first_mounted == 0 or self._make_view is None or self._screen_full:
            self._finish_drafts(shown)
            return
        if self._typing_wait(partial(self._fill_screen, shown)):
            return
        self._loading_earlier = True
        try:
            view = self._draft(self._first_mounted - 1)
            await self.mount(view, before=0)
            self._first_mounted -= 1
        finally:
            self._loading_earlier = False
        # a pause after each message's paint leaves the UI free for keys in between
        self.call_after_refresh(
            self.set_timer, FILL_PAUSE_SECONDS, partial(self._fill_screen, shown)
        )

    def _batch_before(self, end: int, screens: int) -> list[MessageView]:
        """Views for the messages just before ``end``, newest first made, enough to fill
        ``screens`` screens (at least one message, at most BATCH_MESSAGES)."""
        assert self._make_view is not None
        budget = screens * max(self.size.height or self.app.size.height, 1)
        width = self.size.width or self.app.size.width
        views: list[MessageView] = []
        rows = 0
        index = end
        while index > 0 and len(views) < BATCH_MESSAGES and (not views or rows < budget):
            index -= 1
            view = self._make_view(index)
            rows += view.estimated_rows(width)
            views.append(view)
        views.reverse()
        return views

    @property
    def unmounted_before(self) -> int:
        """How many earlier messages are not mounted yet."""
        return self._first_mounted

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # only a move up loads: the column anchoring itself at the bottom on open is not one
        moved_up = new_value < old_value
        if moved_up and new_value < self.size.height and self._first_mounted > 0:
            self._request_earlier()
        near_end = new_value > self.max_scroll_y - self.size.height
        if new_value > old_value and near_end and self.unmounted_after:
            self._request_later()

    def on_resize(self) -> None:
        # a column shorter than the screen cannot be scrolled up: fill it (unless the fill
        # after a show is at it, a message a frame: a batch of Markdown here is 0.4 s)
        if self.max_scroll_y == 0 and self._first_mounted > 0 and not self.filling:
            self._request_earlier()

    def _request_earlier(self) -> None:
        if not self._loading_earlier:
            self._loading_earlier = True
            self.call_later(self._mount_earlier)

    async def _mount_earlier(self) -> None:
        """Mount the batch of messages before the first mounted one, keeping the ones on
        screen where they are."""
        try:
            if self._first_mounted == 0 or self._make_view is None:
                return
            views = self._batch_before(self._first_mounted, SCREENS_AHEAD)
            height_before = self.virtual_size.height
            await self.mount_all(views, before=0)
            self._first_mounted -= len(views)

            def keep_place() -> None:
                grown = self.virtual_size.height - height_before
                self.scroll_to(y=self.scroll_y + grown, animate=False, immediate=True)

            self.call_after_refresh(keep_place)
        finally:
            self._loading_earlier = False

    async def add(self, view: MessageView) -> None:
        """Add a new message's view at the end (after Home, the newest are shown again first)."""
        if self.unmounted_after and self._make_view is not None:
            await self.show(self._count, self._make_view)
        await self.mount(view)
        self._count = self._end_mounted = max(self._count, view.index + 1)
        self.anchor()

    @property
    def views(self) -> list[MessageView]:
        """The mounted message views (the newest; see ``unmounted_before``)."""
        return list(self.query_children(MessageView))

    def view_at(self, index: int) -> MessageView | None:
        """Message ``index``'s view, or None when it is not mounted."""
        for view in self.query_children(MessageView):
            if view.index == index:
                return view
        return None
