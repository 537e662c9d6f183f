"""The input box: Enter sends, ctrl+j (or shift+enter where the terminal reports it) starts a
new line, and up/down on the first/last line walk through what was sent before."""

from __future__ import annotations

from textual import events
from textual.message import Message

from .textarea import VisibleTextArea

NEWLINE_KEYS = ("ctrl+j", "shift+enter")
MESSAGE_TITLE = "Message  (Enter send · ctrl+j new line · ↑ history)"
PREFIX_TITLE = "The bot's reply starts with…  (Enter to let it continue · ctrl+b back)"


class PromptInput(VisibleTextArea):
    """A multi-line input with history. ``prefix_mode``: the text starts the bot's reply."""

    class Submitted(Message):
        def __init__(self, text: str, as_prefix: bool) -> None:
            super().__init__()
            self.text = text
            self.as_prefix = as_prefix

    def __init__(self, sent: list[str] | None = None, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, **kwargs)
        self.sent: list[str] = list(sent or [])
        # Where up/down is in the history; len(history) is the text being written.
        self._history_index = len(self.sent)
        self._draft = ""
        self.prefix_mode = False

    def on_mount(self) -> None:
        self.border_title = MESSAGE_TITLE

    def set_prefix_mode(self, on: bool) -> None:
        self.prefix_mode = on
        self.border_title = PREFIX_TITLE if on else MESSAGE_TITLE
        self.set_class(on, "-prefix")

    def load_history(self, texts: list[str]) -> None:
        """Up/down walks through ``texts`` (a reopened chat's messages) and then what is sent."""
        self.sent = list(texts)
        self._history_index = len(self.sent)
        self._draft = ""

    def remember(self, text: str) -> None:
        if text.strip() and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._history_index = len(self.sent)
        self._draft = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.text, self.prefix_mode))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "up" and self.cursor_location[0] == 0 and self._browse(-1):
            event.stop()
            event.prevent_default()
            return
        if (
            event.key == "down"
            and self.cursor_location[0] == self.document.line_count - 1
            and self._browse(1)
        ):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def _browse(self, step: int) -> bool:
        target = self._history_index + step
        if not 0 <= target <= len(self.sent):
            return False
        if self._history_index == len(self.sent):
            self._draft = self.text
        self._history_index = target
        self.load_text(self.sent[target] if target < len(self.sent) else self._draft)
        self.move_cursor(self.document.end)
        return True
