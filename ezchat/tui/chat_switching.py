"""The chat screen's switching between chats: a new chat, the saved chats' list, opening one,
and exporting the one on screen.

Saving a chat's cache and opening another (reading it, restoring its saved cache into the
model) use the model, so they run in a worker under the app's model lock; while it works the
conversation shows "opening chat…" and the chat's actions wait.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from textual import work

from ..chat.thread import Thread
from ..errors import EzChatError
from ..storage.chats import restore_state, thread_from_store
from .chatlog import ChatLog
from .events import ChatOpened, ChatOpenFailed
from .prompt_input import PromptInput

if TYPE_CHECKING:
    from .chat_screen import ChatScreen


class ChatSwitching:
    """Mixed into ChatScreen."""

    # the chat being opened by the worker, while it is
    opening: int | None = None

    async def action_new_chat(self: ChatScreen) -> None:
        """Start a new chat; the current one stays saved."""
        if not self._can("start a new chat"):
            return
        old_chat, old = self.chat, self.thread
        self.thread = Thread(old.model, old.format, old.sampler)
        self.thread.set_thinking(old.thinking)
        if self.app.options.system is not None:
            self.thread.set_system_prompt(self.app.options.system)
        self.chat = self._adopt(ChatLog(self.thread, self.store, format_name=old_chat.format_name))
        self._put_away(old_chat)
        self.candidates_pane.clear()
        await self._show_conversation()

    @work(thread=True, group="chat", exit_on_error=False)
    def _put_away(self: ChatScreen, chat: ChatLog) -> None:
        """Keep ``chat``'s cache for next time and let other apps write it. The model's cache
        is the one chat just used, so the lock keeps the next reply from changing it first."""
        with self.app.model_lock:
            with contextlib.suppress(EzChatError, OSError):
                chat.save_state()
            chat.release()

    def action_chat_list(self: ChatScreen) -> None:
        """Open, rename, delete and export saved chats."""
        if not self._can("open the chat list"):
            return
        if self.store is None:
            self.notify("Chats are not being saved (the store could not be opened).")
            return
        from .chat_list import ChatListScreen

        async def done(chat_id: int | None) -> None:
            current = self.chat.chat_id
            if chat_id is not None and chat_id != current:
                self.open_chat(chat_id)
            elif current is not None and current not in {c.id for c in self.store.chats()}:
                self.chat.chat_id = None  # deleted in the list: go on in a new chat
                await self.action_new_chat()

        self.app.push_screen(ChatListScreen(self.store, self.chat.chat_id), done)

    def open_chat(self: ChatScreen, chat_id: int) -> None:
        """Make the saved chat ``chat_id`` the current one (the model stays loaded), in a
        worker; ChatOpened or ChatOpenFailed comes back."""
        self.opening = chat_id
        self.conversation.loading = True
        self.app.sub_title = f"opening chat {chat_id}…"
        self.refresh_bindings()
        self._open_chat(chat_id, self.chat)

    @work(thread=True, group="chat", exit_on_error=False)
    def _open_chat(self: ChatScreen, chat_id: int, current: ChatLog | None) -> None:
        notes: list[str] = []
        with self.app.model_lock:
            if current is not None:
                with contextlib.suppress(EzChatError, OSError):
                    current.save_state()
            try:
                thread = thread_from_store(self.store, chat_id, self.app.model, notes=notes)
                chat = ChatLog.open(self.store, chat_id, thread)
            except EzChatError as error:
                self.post_message(ChatOpenFailed(str(error)))
                return
            # a stale or missing saved cache only costs a re-evaluation
            with contextlib.suppress(EzChatError):
                restore_state(self.store, chat_id, thread)
        self.post_message(ChatOpened(thread, chat, notes))

    async def on_chat_opened(self: ChatScreen, message: ChatOpened) -> None:
        chat, notes = message.chat, list(message.notes)
        if chat.detached:
            notes.append(
                f"This chat is open in another ezchat, so it is not changed here: what you send "
                f"goes into a copy, '{chat.copy_title}'."
            )
        for note in notes:
            self.notify(note, severity="warning", timeout=8)
        if self.chat is not None:
            self.chat.release()
        self.thread, self.chat = message.thread, self._adopt(chat)
        self.query_one(PromptInput).load_history(
            [m["content"] for m in self.thread.messages if m["role"] == "user"]
        )
        self.candidates_pane.clear()
        await self._opened()

    async def on_chat_open_failed(self: ChatScreen, message: ChatOpenFailed) -> None:
        self.report(EzChatError(message.error))
        await self._opened()

    async def _opened(self: ChatScreen) -> None:
        self.opening = None
        self.conversation.loading = False
        await self._show_conversation()
        self._update_header()
        self.refresh_bindings()
        self.query_one(PromptInput).focus()
        self.app.ready = True

    def action_export_chat(self: ChatScreen) -> None:
        """Write this chat to Markdown and JSON files: the chat as shown, so it works when the
        chats file no longer takes writes too."""
        if not self._can("export the chat"):  # mid-reply the Thread is ahead of the log
            return
        if not self.thread.messages:
            self.notify("Send a message first; an empty chat has nothing to export.")
            return
        from .chat_list import write_export

        name = f"chat-{self.chat.chat_id}" if self.chat.chat_id is not None else "unsaved-chat"
        try:
            paths = write_export(self.chat.export_data(), name)
        except OSError as error:
            self.report(EzChatError(f"the chat could not be exported: {error}"))
            return
        self.notify("Exported to " + " and ".join(str(p) for p in paths))
