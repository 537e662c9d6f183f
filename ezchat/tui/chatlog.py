"""``ChatLog``: the app's conversation, the Thread's tree (ezchat.chat.tree), saved to the
store as it changes.

Every change the app makes goes through here and ends in ``_sync``, which writes what the tree
holds and the store does not: each new node as it appears (a streaming reply's row when it
starts, see ReplySaver), a changed text or link, a removed node, and the active leaf on each
switch. This is the only module of the TUI that talks to the store, so a
chat is saved the same way whichever widget changed it. Without a store (it could not be
opened) the chat works the same and is simply not saved; the same holds from the first write
that fails (a damaged file, a full disk): ``on_save_failed`` is told once, and the chat goes on
in memory, where ``export_data`` can still write it out.

A chat that another app has open (see ezchat.storage.chatlocks) is opened detached: it is shown and can
be continued, but nothing is written to it; the first change saves the whole tree as a
new chat, a copy, so the two apps never interleave their turns in one stored chat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..chat.reasoning import thinking_setting
from ..chat.samplers import sampler_setting
from ..errors import StoreError
from ..storage.chats import save_thread_state
from ..storage.exchange import export_data
from ..storage.messages import title_from_text
from ..storage.schema import DEFAULT_TITLE

if TYPE_CHECKING:
    from ..chat.reply import Reply
    from ..chat.thread import Message, Thread
    from ..chat.tree import Node
    from ..storage.store import ChatStore
    from .reply_saver import ReplySaver


def _state(node: Node) -> tuple:
    """What the store keeps of a node that can change: its links, its text and its bookmark."""
    parent = node.parent.id if node.parent is not None else 0
    chosen = node.chosen.id if node.chosen is not None else 0
    message = node.message or {}
    return parent, chosen, node.content, message.get("reasoning", ""), node.bookmarked


class ChatLog:
    def __init__(
        self,
        thread: Thread,
        store: ChatStore | None = None,
        chat_id: int | None = None,
        *,
        format_name: str = "auto",
    ) -> None:
        self.thread = thread
        self.store = store
        self.chat_id = chat_id
        self.format_name = format_name
        # what the store holds of each node (see _state) and the active leaf it holds
        self._saved: dict[int, tuple] = {}
        self._saved_leaf = 0
        # the title a detached copy is saved under (see ``open``); None: titled as usual
        self.copy_title: str | None = None
        # the first failed write, after which nothing more is written
        self.save_error: str | None = None
        self.on_save_failed: Callable[[str], None] | None = None
        if store is not None and chat_id is not None:
            store.locks.claim(chat_id)
            # a chat opened from the store (thread_from_store): it holds this very tree
            self._saved = {node.id: _state(node) for node in thread.tree.walk()}
            self._saved_leaf = thread.tree.active.id

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def open(cls, store: ChatStore, chat_id: int, thread: Thread) -> ChatLog:
        """The saved chat ``chat_id`` around ``thread`` (made by ``thread_from_store``)."""
        settings = store.chat_settings(chat_id)
        format_name = str(settings.get("format") or "auto")
        if not store.locks.claim(chat_id):
            log = cls(thread, store, None, format_name=format_name)
            log.copy_title = f"{store.chat(chat_id).title} (copy)"
            return log
        return cls(thread, store, chat_id, format_name=format_name)

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
        return self.chat_id

    def sync(self) -> None:
        """Save what the tree holds and the store does not (the chat is created in the store
        on its first message, and then a detached chat's whole tree is saved as its copy)."""
        if not self.thread.messages and self.chat_id is None:
            return
        chat_id = self._ensure_chat()
        if chat_id is not None:
            self._save(self._write_changes, chat_id)

    def _write_changes(self, chat_id: int) -> None:
        store, tree = self.store, self.thread.tree
        present = set()
        for node in tree.walk():  # parents before their children
            present.add(node.id)
            state, saved = _state(node), self._saved.get(node.id)
            if saved is None:
                if node.role == "bot" and node.tokens is None:
                    node.tokens = self._tokens(node.message)
                store.save_node(chat_id, node, activate=False)
            elif saved != state:
                if saved[:2] != state[:2]:
                    store.relink(chat_id, node.id, state[0], state[1])
                if saved[2:4] != state[2:4]:
                    message = node.message or {}
                    store.update_node(
                        chat_id,
                        node.id,
                        node.content,
                        reasoning=message.get("reasoning", ""),
                        tokens=node.tokens,
                        token_info=node.token_info,
                    )
                if saved[4] != state[4]:
                    store.set_bookmark(chat_id, node.id, node.bookmarked)
            self._saved[node.id] = state  # per node: a failure midway leaves a true record
        gone = sorted(self._saved.keys() - present)
        if gone:
            store.forget_nodes(chat_id, gone)
            for node_id in gone:
                del self._saved[node_id]
        if tree.active.id != self._saved_leaf:
            store.set_active_leaf(chat_id, tree.active.id)
            self._saved_leaf = tree.active.id

    def saved_leaf_is(self, node_id: int) -> None:
        """The store's active leaf is now ``node_id`` (a streaming reply's row)."""
        self._saved_leaf = node_id

    def saved_reply(self, node: Node) -> None:
        """A reply's node as ReplySaver wrote it (its final text, tokens and weighing)."""
        self._saved[node.id] = _state(node)

    def _tokens(self, message: Message) -> list[int] | None:
        """A reply's token ids as generated, saved so a reopened chat matches its cache."""
        return self.thread.reply_tokens(message) if message["role"] == "bot" else None

    def versions(self, index: int) -> list[str]:
        """The texts of ``messages[index]`` and its siblings, in order."""
        return [node.content for node in self.thread.tree.siblings(self.thread.node_at(index))]

    def label(self, index: int) -> str:
        """``"2/3"`` when ``messages[index]`` has siblings, else ``""``."""
        place, count = self.thread.node_at(index).sibling_index()
        return f"{place + 1}/{count}" if count > 1 else ""

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
        self.sync()

    def start_saving_reply(
        self, kind: str, head: str, reasoning_head: str = "", reply: Reply | None = None
    ) -> ReplySaver:
        """Called by the generation worker as the reply starts: the reply gets its row now and
        its text as it streams (``ReplySaver``), so quitting or a signal mid-reply keeps it."""
        from .reply_saver import ReplySaver

        return ReplySaver(self, kind, head, reasoning_head, reply)

    def reply_finished(self, kind: str, saver: ReplySaver | None = None) -> str:
        """Save what the reply the Thread just recorded changed (``saver`` has already stored
        the reply itself); returns its label ("2/3")."""
        self.sync()
        return self.label(len(self.thread.messages) - 1)

    def select_version(self, index: int, step: int) -> bool:
        """Switch message ``index`` to its previous (-1) or next (+1) sibling; the messages
        after it follow that branch. False at an end."""
        if not self.thread.switch_sibling(index, step):
            return False
        self.sync()
        return True

    def edit(self, index: int, text: str) -> None:
        """A sibling holding ``text`` (a system message changes in place)."""
        self.thread.edit(index, text)
        self.sync()

    def delete(self, index: int) -> None:
        del self.thread.messages[index]
        self.sync()

    def insert(self, index: int, role: str, text: str) -> None:
        """Put a new message before ``messages[index]`` (at the end when index is past it)."""
        thread = self.thread
        thread.messages.insert(index, thread.create_message(role, text))
        self.sync()

    def set_system_prompt(self, text: str) -> None:
        """Replace the leading system message(s) with ``text`` (``""`` removes them); clearing
        the chat then returns to this system prompt."""
        self.thread.set_system_prompt(text)
        self.sync()

    def clear(self) -> None:
        """Start again after the leading system prompt; the conversation stays in the tree as
        a branch (the tree screen reaches it)."""
        tree = self.thread.tree
        keep = tree.root
        for node in tree.active_path:
            if node.role != "system":
                break
            keep = node
        tree.truncate_to(keep)
        if self.chat_id is not None:
            self.sync()

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
        settings = {
            "model": str(self.thread.model.filename),
            "format": self.format_name,
            "sampler": sampler_setting(self.thread.sampler),
            "system_prompt": system,
            "thinking": thinking_setting(self.thread.thinking),
        }
        return export_data(self.thread.tree, title, settings, now, now)
