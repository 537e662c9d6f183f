"""The chat screen's ``grow`` action: N alternative replies at once (``Thread.grow``, one
llama.cpp batch), listed in the grow panel as they stream, one picked to continue the chat.

The worker holds the app's model lock for the whole growth and saves the N recorded replies
(``ChatLog.sync``) before it lets go, so quitting right after a stop keeps them all; picking
one is a switch of the Thread's path, saved and drawn like a switch with ←/→.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.message import Message

from ..errors import EzChatError
from .grow_panel import GrowPanel
from .prompt_input import PromptInput

if TYPE_CHECKING:
    from ..chat.grow import GrowingReplies
    from .chat_screen import ChatScreen


class GrowFinished(Message):
    """The growth ended: its replies are recorded and saved, or it failed with ``error``."""

    def __init__(self, grown: GrowingReplies | None, error: str | None = None) -> None:
        super().__init__()
        self.grown = grown
        self.error = error


class GrowFlow:
    """Mixed into ChatScreen (the type hints below say so)."""

    _growing: GrowingReplies | None = None
    _grow_panel: GrowPanel | None = None

    def action_grow(self: ChatScreen) -> None:
        """Grow ``[loom] grow`` replies to the last message and pick one."""
        if not self._can("grow replies"):
            return
        messages = self.thread.messages
        if not messages or messages[-1]["role"] not in ("user", "bot"):
            self.notify("There is nothing to grow replies to; send a message first.")
            return
        n = self.app.config.grow
        self.generating = True
        self._stop_requested = False
        self._growing = None
        self.refresh_bindings()
        panel = GrowPanel(n, self._grown_texts, self._stop_growing)
        self._grow_panel = panel
        self.app.push_screen(panel, self._grow_picked)
        self._grow(n)

    def _grown_texts(self: ChatScreen) -> list[str]:
        grown = self._growing
        return list(grown.texts) if grown is not None else []

    def _stop_growing(self: ChatScreen) -> None:
        self._stop_requested = True
        if self._growing is not None:
            self._growing.cancel()

    @work(thread=True, group="generation", exit_on_error=False)
    def _grow(self: ChatScreen, n: int) -> None:
        with self.app.model_lock:
            try:
                grown = self.thread.grow(n)
            except EzChatError as error:
                self.post_message(GrowFinished(None, str(error)))
                return
            self._growing = grown
            if self._stop_requested:
                grown.cancel()
            error = None
            try:
                for _ in grown:
                    pass
            except EzChatError as exc:
                error = str(exc)
            # saved here, not on the UI thread: after Ctrl+Q the UI handlers never run
            self.chat.sync()
        self.post_message(GrowFinished(grown, error))

    async def on_grow_finished(self: ChatScreen, message: GrowFinished) -> None:
        self.generating = False
        self.refresh_bindings()
        panel = self._grow_panel
        grown = message.grown
        if message.error:
            self.notify(message.error, severity="error", timeout=8)
        if grown is None or not grown.nodes:
            self._grow_panel = None
            if panel is not None and panel.is_attached:
                panel.dismiss(None)
            return
        if panel is not None and panel.is_attached:
            panel.finished([node.content for node in grown.nodes])
        # until one is picked, the conversation shows reply 1, the one the Thread made active
        await self._show_conversation()

    async def _grow_picked(self: ChatScreen, index: int | None) -> None:
        grown, self._growing, self._grow_panel = self._growing, None, None
        if index is not None and grown is not None and grown.nodes:
            try:
                grown.pick(index)
            except EzChatError as error:
                self.report(error)
            self.chat.sync()
            self.candidates_pane.clear()
            await self._show_conversation()
            self._evaluate_switch()
        self.query_one(PromptInput).focus()
