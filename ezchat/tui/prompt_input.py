"""The input box: Enter sends, ctrl+j (or shift+enter where the terminal reports it) starts a
new line, and up/down on the first/last line walk through what was sent before."""

from __future__ import annotations

from textual.message import Message

from .actions import INPUT, bindings, current_keys
from .textarea import VisibleTextArea


class PromptInput(VisibleTextArea):
    """A multi-line input with history. ``prefix_mode``: the text starts the bot's reply."""

    # priority: a text area would take Enter and the arrows for itself otherwise
    BINDINGS = bindings(INPUT)

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
        self.border_title = self._title()

    def _title(self) -> str:
        """The box's title names the keys as the user's [keymap] has them."""
        keymap = getattr(self.app, "keymap", {})
        send = current_keys("input.send", keymap)
        if self.prefix_mode:
            back = current_keys("prefix", keymap)
            return f"The bot's reply starts with…  ({send} to let it continue · {back} back)"
        newline = current_keys("input.newline", keymap, first_only=True)
        history = current_keys("input.history_previous", keymap)
        return f"Message  ({send} send · {newline} new line · {history} history)"

    def set_prefix_mode(self, on: bool) -> None:
        self.prefix_mode = on
        self.border_title = self._title()
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

    # The bindings run in the app's task as soon as the key arrives, while the keys typed
    # before it still wait in this widget's queue (a paste, or typing ahead while the model
    # loads). So each action queues itself behind them: Enter sends all of the text typed
    # before it, and a new line goes where the cursor will be.

    def action_send(self) -> None:
        self.call_later(lambda: self.post_message(self.Submitted(self.text, self.prefix_mode)))

    def action_newline(self) -> None:
        self.call_later(self.insert, "\n")

    def action_history(self, step: int) -> None:
        self.call_later(self._walk_history, step)

    def _walk_history(self, step: int) -> None:
        """Walk the history on the first line (up) or the last line (down); elsewhere the key
        moves the cursor as it does in any text area."""
        row = self.cursor_location[0]
        edge = 0 if step < 0 else self.document.line_count - 1
        if row == edge and self._browse(step):
            return
        if step < 0:
            self.action_cursor_up()
        else:
            self.action_cursor_down()

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
