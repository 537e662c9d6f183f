"""``ChatLog``: the app's conversation as the Thread sees it, plus every version of every
reply, saved to the store as it happens.

The Thread holds one text per message (the version in use); the ChatLog keeps, beside each
message, all its versions (reroll and branch add one; continue and edit change the current one)
and its row id in the store. This is the only module of the TUI that talks to the store, so a
chat is saved the same way whichever widget changed it. Without a store (it could not be
opened) the chat works the same and is simply not saved; the same holds from the first write
that fails (a damaged file, a full disk): ``on_save_failed`` is told once, and the chat goes on
in memory, where ``export_data`` can still write it out.

A chat that another app has open (see ezchat.storage.chatlocks) is opened detached: it is shown and can
be continued, but nothing is written to it; the first change saves the whole conversation as a
new chat, a copy, so the two apps never interleave their turns in one stored chat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..chat.reasoning import thinking_setting
from ..chat.reply_kind import ReplyKind
from ..chat.samplers import sampler_setting
from ..errors import EzChatError, StoreError
from ..storage.chats import save_thread_state
from ..storage.exchange import CheckedMessage, export_data, tree_from_messages
from ..storage.messages import title_from_text
from ..storage.schema import DEFAULT_TITLE

if TYPE_CHECKING:
    from ..chat.thread import Message, Thread
    from ..chat.tree import Tree
    from ..storage.store import ChatStore
    from .reply_saver import ReplySaver


@dataclass(slots=True)
class Entry:
    """One message's versions (its node and its siblings in the stored tree) and each one's
    node id in the store (``None``: not saved)."""

    versions: list[str]
    current: int = 0
    node_ids: list[int | None] = field(default_factory=list)
    # each version's reasoning ('' for none), beside ``versions``
    reasonings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reasonings += [""] * (len(self.versions) - len(self.reasonings))
        self.node_ids += [None] * (len(self.versions) - len(self.node_ids))

    @property
    def message_id(self) -> int | None:
        """The stored node of the version shown."""
        return self.node_ids[self.current]

    @message_id.setter
    def message_id(self, node_id: int | None) -> None:
        self.node_ids[self.current] = node_id

    @property
    def reasoning(self) -> str:
        return self.reasonings[self.current]

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
            entries = [Entry([m["content"]], reasonings=[_reasoning(m)]) for m in thread.messages]
        if len(entries) != len(thread.messages):
            raise EzChatError("the saved chat's messages do not match its thread; reopen it")
        self.entries = entries
        # the title a detached copy is saved under (see ``open``); None: titled as usual
        self.copy_title: str | None = None
        # the first failed write, after which nothing more is written
        self.save_error: str | None = None
        self.on_save_failed: Callable[[str], None] | None = None
        if store is not None and chat_id is not None:
            store.locks.claim(chat_id)

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def open(cls, store: ChatStore, chat_id: int, thread: Thread) -> ChatLog:
        """The saved chat ``chat_id`` around ``thread`` (made by ``thread_from_store``)."""
        entries = entries_from_tree(store.load_tree(chat_id))
        settings = store.chat_settings(chat_id)
        format_name = str(settings.get("format") or "auto")
        if not store.locks.claim(chat_id):
            for entry in entries:
                entry.node_ids = [None] * len(entry.versions)
            log = cls(thread, store, None, format_name=format_name, entries=entries)
            log.copy_title = f"{store.chat(chat_id).title} (copy)"
            return log
        return cls(thread, store, chat_id, format_name=format_name, entries=entries)

    @property
    def detached(self) -> bool:
        """Opened while another app had the chat: changes go to a copy, made on the first."""
        return self.copy_title is not None and self.chat_id is None

    def release(self) -> None:
        """Let another app write this chat (this one switches to another chat)."""
        if self.store is not None and self.chat_id is not None:
            self.store.locks.release(self.chat_id)

    # --- saving --------------------------------------------------------------------------------

    @property
    def saving(self) -> bool:
        return self.store is not None and self.save_error is None

    def _save(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One write to the store; None when the chat is not being saved. The first write that
        fails stops saving and is reported once: the chat itself goes on in memory."""
        if not self.saving:
            return None
        try:
            return write(*args, **kwargs)
        except StoreError as error:
            self.save_error = str(error)
            if self.on_save_failed is not None:
                self.on_save_failed(self.save_error)
            return None

    def _ensure_chat(self) -> int | None:
        """Create the chat in the store on its first message, so empty chats are not listed
        (the store titles it after the first user message)."""
        if not self.saving:
            return None
        if self.chat_id is None:
            thread = self.thread
            system = "".join(m["content"] for m in thread.messages[:1] if m["role"] == "system")
            chat_id = self._save(
                self.store.create_chat,
                self.copy_title or DEFAULT_TITLE,
                model=thread.model.filename,
                format=self.format_name,
                sampler=sampler_setting(thread.sampler),
                system_prompt=system,
                thinking=thinking_setting(thread.thinking),
            )
            if chat_id is None:
                return None
            self.chat_id = chat_id
            self.store.locks.claim(chat_id)
            # The messages so far (the system prompt, or a detached chat's whole history) are
            # saved before the first new one.
            for message, entry in zip(thread.messages, self.entries, strict=False):
                if entry.message_id is None:
                    self._store_message(chat_id, message, entry)
        return self.chat_id

    def _store_message(self, chat_id: int, message: Message, entry: Entry) -> None:
        entry.message_id = self._save(
            self.store.add_message,
            chat_id,
            message["role"],
            message["content"],
            tokens=self._tokens(message),
            reasoning=entry.reasoning,
        )

    def _tokens(self, message: Message) -> list[int] | None:
        """A reply's token ids as generated, saved so a reopened chat matches its cache."""
        return self.thread.reply_tokens(message) if message["role"] == "bot" else None

    def _add(self, message: Message) -> Entry:
        entry = Entry([message["content"]], reasonings=[_reasoning(message)])
        chat_id = self._ensure_chat()
        self.entries.append(entry)
        if chat_id is not None:
            self._store_message(chat_id, message, entry)
        return entry

    def save_settings(self) -> None:
        """Remember the chat's sampler, format and thinking switch (called when the user
        changes them)."""
        if self.chat_id is not None:
            self._save(
                self.store.update_chat,
                self.chat_id,
                sampler=sampler_setting(self.thread.sampler),
                format=self.format_name,
                thinking=thinking_setting(self.thread.thinking),
            )

    def set_thinking(self, enabled: bool | None) -> str:
        """Flip the chat's thinking switch and save it; returns the line to show. A format
        without a switch raises its one-line EzChatError and nothing changes."""
        shown = self.thread.switch_thinking(enabled)
        self.save_settings()
        return shown

    def save_state(self) -> None:
        """Keep the model's cache for this chat so reopening it evaluates nothing."""
        if self.chat_id is not None:
            self._save(save_thread_state, self.store, self.chat_id, self.thread)

    # --- changes the app makes -----------------------------------------------------------------

    def add_user_message(self, text: str) -> None:
        self.thread.add_message("user", text)
        self._add(self.thread.messages[-1])

    def start_saving_reply(self, kind: str, head: str, reasoning_head: str = "") -> ReplySaver:
        """Called by the generation worker as the reply starts: the reply gets its row now and
        its text as it streams (``ReplySaver``), so quitting or a signal mid-reply keeps it."""
        from .reply_saver import ReplySaver

        return ReplySaver(self, kind, head, reasoning_head)

    def parent_id(self, index: int) -> int | None:
        """The stored node the message at ``index`` hangs under (0: the top)."""
        return self.entries[index - 1].message_id if index > 0 else 0

    def reply_finished(self, kind: str, saver: ReplySaver) -> Entry:
        """Record the reply the Thread just recorded (``saver`` has already stored it).
        ``kind``: "reply" (a new message), "reroll" or "branch" (a new version of the last
        one), "continue" (the current version grew)."""
        message = self.thread.messages[-1]
        text, thought = message["content"], _reasoning(message)
        if kind == ReplyKind.REPLY:
            entry = Entry([text], node_ids=[saver.node_id], reasonings=[thought])
            self.entries.append(entry)
            return entry
        entry = self.entries[-1]
        if ReplyKind(kind).adds_version:
            entry.versions.append(text)
            entry.reasonings.append(thought)
            entry.node_ids.append(saver.node_id)
            entry.current = len(entry.versions) - 1
        elif kind == ReplyKind.CONTINUE:
            entry.versions[entry.current] = text
            entry.reasonings[entry.current] = thought
        else:
            raise ValueError(f"unknown reply kind {kind!r}")
        return entry

    def select_version(self, index: int, step: int) -> bool:
        """Show the previous (-1) or next (+1) version of message ``index``; False at an end.
        In a saved chat the messages after it follow that version's branch, as stored."""
        entry = self.entries[index]
        target = entry.current + step
        if not 0 <= target < len(entry.versions):
            return False
        entry.current = target
        message = self.thread.messages[index]
        message["content"] = entry.versions[target]
        if entry.reasonings[target]:
            message["reasoning"] = entry.reasonings[target]
        else:
            message.pop("reasoning", None)
        if entry.message_id is not None and self.chat_id is not None:
            self._save(self._follow_branch, index)
        return True

    def _follow_branch(self, index: int) -> None:
        """Switch the stored tree to the version shown at ``index`` and show the messages
        under it (the ones it was continued with last)."""
        tree = self.store.switch_to(self.chat_id, self.entries[index].message_id)
        thread, path = self.thread, tree.active_path
        del thread.messages[index + 1 :]
        del self.entries[index + 1 :]
        for node in path[index + 1 :]:
            thread.messages.append(thread.message_from_dict(dict(node.message)))
            if node.tokens:
                thread.remember_tokens(thread.reply_text(thread.messages[-1]), node.tokens)
        self.entries += entries_from_tree(tree)[index + 1 :]

    def edit(self, index: int, text: str) -> None:
        entry = self.entries[index]
        entry.versions[entry.current] = text
        self.thread.messages[index]["content"] = text
        if entry.message_id is not None:
            self._save(self.store.update_node, self.chat_id, entry.message_id, text)

    def delete(self, index: int) -> None:
        entry = self.entries.pop(index)
        del self.thread.messages[index]
        if entry.message_id is not None:
            self._save(self.store.delete_message, self.chat_id, entry.message_id)

    def insert(self, index: int, role: str, text: str) -> None:
        """Put a new message before ``messages[index]`` (at the end when index is past it)."""
        thread = self.thread
        if index >= len(thread.messages):
            thread.add_message(role, text)
            self._add(thread.messages[-1])
            return
        thread.messages.insert(index, thread.create_message(role, text))
        entry = Entry([text])
        self.entries.insert(index, entry)  # a system or user message: no reasoning
        chat_id = self._ensure_chat()
        before = self.entries[index + 1].message_id
        if chat_id is not None and before is not None and entry.message_id is None:
            entry.message_id = self._save(self.store.insert_message, chat_id, before, role, text)

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
                self._save(self.store.delete_message, self.chat_id, entry.message_id)
        if not text:
            return
        if old_entries:
            kept = old_entries[0]
            kept.versions[kept.current] = text
            self.entries.insert(0, kept)
            if kept.message_id is not None:
                self._save(self.store.update_node, self.chat_id, kept.message_id, text)
            return
        entry = Entry([text])
        self.entries.insert(0, entry)
        chat_id = self.chat_id if self.store is not None else None
        if chat_id is not None and len(self.entries) > 1 and self.entries[1].message_id:
            entry.message_id = self._save(
                self.store.insert_message, chat_id, self.entries[1].message_id, "system", text
            )

    def clear(self) -> None:
        """Delete every message but the leading system prompt."""
        keep = 0
        while keep < len(self.entries) and self.thread.messages[keep]["role"] == "system":
            keep += 1
        del self.thread.messages[keep:]
        del self.entries[keep:]
        if self.chat_id is not None:
            self._save(self.store.clear_messages, self.chat_id, keep_system=True)

    def rename(self, title: str) -> None:
        if self.chat_id is not None:
            self._save(self.store.rename_chat, self.chat_id, title)

    # --- export --------------------------------------------------------------------------------

    def _title(self) -> str:
        if self.chat_id is not None and self.saving:
            try:
                return self.store.chat(self.chat_id).title
            except StoreError:
                pass
        if self.copy_title is not None:
            return self.copy_title
        users = [m["content"] for m in self.thread.messages if m["role"] == "user"]
        return title_from_text(users[0]) if users else DEFAULT_TITLE

    def export_data(self, title: str | None = None) -> dict[str, Any]:
        """The chat as the app holds it, in ``ChatStore.export_json``'s shape: what is on
        screen, whether or not the store still takes writes."""
        if title is None:
            title = self._title()
        now = datetime.now().astimezone().isoformat()
        system = "".join(m["content"] for m in self.thread.messages[:1] if m["role"] == "system")
        messages = [
            CheckedMessage(message["role"], list(e.versions), e.current, list(e.reasonings))
            for message, e in zip(self.thread.messages, self.entries, strict=True)
        ]
        settings = {
            "model": str(self.thread.model.filename),
            "format": self.format_name,
            "sampler": sampler_setting(self.thread.sampler),
            "system_prompt": system,
            "thinking": thinking_setting(self.thread.thinking),
        }
        return export_data(tree_from_messages(messages), title, settings, now, now)


def entries_from_tree(tree: Tree) -> list[Entry]:
    """The entries of a stored tree's active path: each message with its siblings."""
    entries = []
    for node in tree.active_path:
        siblings = tree.siblings(node)
        entries.append(
            Entry(
                [sibling.content for sibling in siblings],
                siblings.index(node),
                [sibling.id for sibling in siblings],
                [(sibling.message or {}).get("reasoning", "") for sibling in siblings],
            )
        )
    return entries


def _reasoning(message: Message) -> str:
    return message.get("reasoning", "") if message["role"] == "bot" else ""
