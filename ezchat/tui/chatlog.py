"""``ChatLog``: the app's conversation as the Thread sees it, plus every version of every
reply, saved to the store as it happens.

The Thread holds one text per message (the version in use); the ChatLog keeps, beside each
message, all its versions (reroll and branch add one; continue and edit change the current one)
and its row id in the store. This is the only module of the TUI that talks to the store, so a
chat is saved the same way whichever widget changed it. Without a store (it could not be
opened) the chat works the same and is simply not saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..chats import sampler_setting, save_thread_state
from ..errors import EzChatError
from ..store import DEFAULT_TITLE

if TYPE_CHECKING:
    from ..store import ChatStore
    from ..thread import Message, Thread


@dataclass(slots=True)
class Entry:
    """One message's versions and where it is stored (``None``: not saved)."""

    versions: list[str]
    current: int = 0
    message_id: int | None = None

    @property
    def label(self) -> str:
        """``"2/3"`` when the message has several versions, else ``""``."""
        return f"{self.current + 1}/{len(self.versions)}" if len(self.versions) > 1 else ""


class ChatLog:
    def __init__(
        self,
        thread: Thread,
        store: ChatStore | None = None,
        chat_id: int | None = None,
        *,
        format_name: str = "auto",
        entries: list[Entry] | None = None,
    ) -> None:
        self.thread = thread
        self.store = store
        self.chat_id = chat_id
        self.format_name = format_name
        if entries is None:
            entries = [Entry([m["content"]]) for m in thread.messages]
        if len(entries) != len(thread.messages):
            raise EzChatError("the saved chat's messages do not match its thread; reopen it")
        self.entries = entries

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def open(cls, store: ChatStore, chat_id: int, thread: Thread) -> ChatLog:
        """The saved chat ``chat_id`` around ``thread`` (made by ``thread_from_store``)."""
        stored = store.messages(chat_id)
        entries = [Entry(list(m.versions), m.current, m.id) for m in stored]
        settings = store.chat_settings(chat_id)
        return cls(
            thread,
            store,
            chat_id,
            format_name=str(settings.get("format") or "auto"),
            entries=entries,
        )

    # --- saving --------------------------------------------------------------------------------

    def _ensure_chat(self) -> int | None:
        """Create the chat in the store on its first message, so empty chats are not listed
        (the store titles it after the first user message)."""
        if self.store is None:
            return None
        if self.chat_id is None:
            thread = self.thread
            system = "".join(m["content"] for m in thread.messages[:1] if m["role"] == "system")
            self.chat_id = self.store.create_chat(
                DEFAULT_TITLE,
                model=thread.model.filename,
                format=self.format_name,
                sampler=sampler_setting(thread.sampler),
                system_prompt=system,
            )
            # The messages so far (the system prompt) are saved before the first new one.
            for message, entry in zip(thread.messages, self.entries, strict=False):
                if entry.message_id is None:
                    entry.message_id = self.store.add_message(
                        self.chat_id, message["role"], message["content"]
                    )
        return self.chat_id

    def _tokens(self, message: Message) -> list[int] | None:
        """A reply's token ids as generated, saved so a reopened chat matches its cache."""
        return self.thread.reply_tokens(message) if message["role"] == "bot" else None

    def _add(self, message: Message) -> Entry:
        entry = Entry([message["content"]])
        chat_id = self._ensure_chat()
        self.entries.append(entry)
        if chat_id is not None:
            entry.message_id = self.store.add_message(
                chat_id, message["role"], message["content"], tokens=self._tokens(message)
            )
        return entry

    def save_settings(self) -> None:
        """Remember the chat's sampler and format (called when the user changes them)."""
        if self.store is not None and self.chat_id is not None:
            self.store.update_chat(
                self.chat_id,
                sampler=sampler_setting(self.thread.sampler),
                format=self.format_name,
            )

    def save_state(self) -> None:
        """Keep the model's cache for this chat so reopening it evaluates nothing."""
        if self.store is not None and self.chat_id is not None:
            save_thread_state(self.store, self.chat_id, self.thread)

    # --- changes the app makes -----------------------------------------------------------------

    def add_user_message(self, text: str) -> None:
        self.thread.add_message("user", text)
        self._add(self.thread.messages[-1])

    def reply_finished(self, kind: str) -> Entry:
        """Record the reply the Thread just recorded. ``kind``: "reply" (a new message),
        "reroll" or "branch" (a new version of the last one), "continue" (the current version
        grew)."""
        message = self.thread.messages[-1]
        text = message["content"]
        if kind == "reply":
            return self._add(message)
        entry = self.entries[-1]
        if kind in ("reroll", "branch"):
            entry.versions.append(text)
            entry.current = len(entry.versions) - 1
            if entry.message_id is not None:
                self.store.add_version(entry.message_id, text, tokens=self._tokens(message))
        elif kind == "continue":
            entry.versions[entry.current] = text
            if entry.message_id is not None:
                self.store.update_version(
                    entry.message_id, text, index=entry.current, tokens=self._tokens(message)
                )
        else:
            raise ValueError(f"unknown reply kind {kind!r}")
        return entry

    def select_version(self, index: int, step: int) -> bool:
        """Show the previous (-1) or next (+1) version of message ``index``; False at an end."""
        entry = self.entries[index]
        target = entry.current + step
        if not 0 <= target < len(entry.versions):
            return False
        entry.current = target
        self.thread.messages[index]["content"] = entry.versions[target]
        if entry.message_id is not None:
            self.store.set_current_version(entry.message_id, target)
        return True

    def edit(self, index: int, text: str) -> None:
        entry = self.entries[index]
        entry.versions[entry.current] = text
        self.thread.messages[index]["content"] = text
        if entry.message_id is not None:
            self.store.update_version(entry.message_id, text, index=entry.current)

    def delete(self, index: int) -> None:
        entry = self.entries.pop(index)
        del self.thread.messages[index]
        if entry.message_id is not None:
            self.store.delete_message(entry.message_id)

    def insert(self, index: int, role: str, text: str) -> None:
        """Put a new message before ``messages[index]`` (at the end when index is past it)."""
        thread = self.thread
        if index >= len(thread.messages):
            thread.add_message(role, text)
            self._add(thread.messages[-1])
            return
        thread.messages.insert(index, thread.create_message(role, text))
        entry = Entry([text])
        self.entries.insert(index, entry)
        chat_id = self._ensure_chat()
        before = self.entries[index + 1].message_id
        if chat_id is not None and before is not None:
            entry.message_id = self.store.insert_message(chat_id, before, role, text)

    def set_system_prompt(self, text: str) -> None:
        """Replace the leading system message(s) with ``text`` (``""`` removes them); clearing
        the chat then returns to this system prompt."""
        leading = 0
        while leading < len(self.entries) and self.thread.messages[leading]["role"] == "system":
            leading += 1
        old_entries = self.entries[:leading]
        self.thread.set_system_prompt(text)
        del self.entries[:leading]
        for entry in old_entries[1 if text else 0 :]:
            if entry.message_id is not None:
                self.store.delete_message(entry.message_id)
        if not text:
            return
        if old_entries:
            kept = old_entries[0]
            kept.versions[kept.current] = text
            self.entries.insert(0, kept)
            if kept.message_id is not None:
                self.store.update_version(kept.message_id, text, index=kept.current)
            return
        entry = Entry([text])
        self.entries.insert(0, entry)
        chat_id = self.chat_id if self.store is not None else None
        if chat_id is not None and len(self.entries) > 1 and self.entries[1].message_id:
            entry.message_id = self.store.insert_message(
                chat_id, self.entries[1].message_id, "system", text
            )

    def clear(self) -> None:
        """Delete every message but the leading system prompt."""
        keep = 0
        while keep < len(self.entries) and self.thread.messages[keep]["role"] == "system":
            keep += 1
        del self.thread.messages[keep:]
        del self.entries[keep:]
        if self.store is not None and self.chat_id is not None:
            self.store.clear_messages(self.chat_id, keep_system=True)

    def rename(self, title: str) -> None:
        if self.store is not None and self.chat_id is not None:
            self.store.rename_chat(self.chat_id, title)
