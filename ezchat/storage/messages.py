"""A chat's messages and the versions of each (rerolls, branches, edits): the rows of
``messages`` and ``versions``, mixed into ChatStore.

A message's ``current`` version is the one shown and prompted with; each version keeps the
token ids it was generated as (when known) and its reasoning apart from its answer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ..chat.roles import normalize_role
from ..errors import StoreError
from .connection import StoreFile
from .schema import DEFAULT_TITLE, packed_or_none, unpack_tokens

TITLE_LENGTH = 40


@dataclass(slots=True)
class StoredMessage:
    """One message: ``content`` is its current version, ``versions[current]``. ``tokens`` are
    the token ids of the current version when known (a reply as the model generated it)."""

    id: int
    role: str
    content: str
    versions: list[str]
    current: int
    tokens: list[int] | None = field(default=None, repr=False)
    # each version's reasoning ('' where it has none), beside ``versions``
    reasonings: list[str] = field(default_factory=list, repr=False)

    @property
    def reasoning(self) -> str:
        return self.reasonings[self.current] if self.current < len(self.reasonings) else ""


def title_from_text(text: str, length: int = TITLE_LENGTH) -> str:
    """A chat title from a message: its first ``length`` characters on one line, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= length:
        return line
    cut = line[:length]
    space = cut.rfind(" ")
    if space > length // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


class MessageRows(StoreFile):
    """The messages of the chats in a StoreFile (mixed into ChatStore)."""

    def _require_message(self, conn: sqlite3.Connection, message_id: int) -> tuple[int, int, int]:
        """(chat_id, position, current) of a message."""
        row = conn.execute(
            "SELECT chat_id, position, current FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no saved message with id {message_id}; it may have been deleted")
        return row

    def _maybe_title(self, conn: sqlite3.Connection, chat_id: int, role: str, text: str) -> None:
        """A chat still called "New chat" takes its title from its first user message."""
        if role != "user" or not text.strip():
            return
        title = conn.execute("SELECT title FROM chats WHERE id = ?", (chat_id,)).fetchone()[0]
        if title != DEFAULT_TITLE:
            return
        users = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE chat_id = ? AND role = 'user'", (chat_id,)
        ).fetchone()[0]
        if users == 1:
            conn.execute(
                "UPDATE chats SET title = ? WHERE id = ?", (title_from_text(text), chat_id)
            )

    @staticmethod
    def _role(role: str) -> str:
        try:
            return normalize_role(role)
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    # --- messages ------------------------------------------------------------------------------

    def add_message(
        self,
        chat_id: int,
        role: str,
        content: str,
        *,
        tokens: list[int] | None = None,
        reasoning: str = "",
    ) -> int:
        """Append a message (its version 0, current) and return its id. ``tokens``: the ids the
        model generated for a reply, kept so a reopened chat matches its saved state."""
        role = self._role(role)
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            position = conn.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE chat_id = ?",
                (chat_id,),
            ).fetchone()[0]
            message_id = self._insert(conn, chat_id, position, role, content, tokens, reasoning)
            self._maybe_title(conn, chat_id, role, content)
            self._touch(conn, chat_id)
            return message_id

    def insert_message(
        self,
        chat_id: int,
        before_message_id: int | None,
        role: str,
        content: str,
        *,
        tokens: list[int] | None = None,
    ) -> int:
        """Insert a message before another of the same chat (``None``: at the end)."""
        if before_message_id is None:
            return self.add_message(chat_id, role, content, tokens=tokens)
        role = self._role(role)
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            owner, position, _ = self._require_message(conn, before_message_id)
            if owner != chat_id:
                raise StoreError(
                    f"message {before_message_id} belongs to chat {owner}, not chat {chat_id}"
                )
            conn.execute(
                "UPDATE messages SET position = position + 1 WHERE chat_id = ? AND position >= ?",
                (chat_id, position),
            )
            message_id = self._insert(conn, chat_id, position, role, content, tokens)
            self._maybe_title(conn, chat_id, role, content)
            self._touch(conn, chat_id)
            return message_id

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        chat_id: int,
        position: int,
        role: str,
        content: str,
        tokens: list[int] | None,
        reasoning: str = "",
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO messages (chat_id, position, role, current) VALUES (?, ?, ?, 0)",
            (chat_id, position, role),
        )
        message_id = int(cursor.lastrowid)
        conn.execute(
            "INSERT INTO versions (message_id, idx, content, tokens, reasoning) "
            "VALUES (?, 0, ?, ?, ?)",
            (message_id, content, packed_or_none(tokens), reasoning),
        )
        return message_id

    def add_version(
        self,
        message_id: int,
        content: str,
        *,
        tokens: list[int] | None = None,
        reasoning: str = "",
    ) -> int:
        """Add a version of a message (a reroll or a branch); it becomes current. Returns its
        index."""
        with self._writing() as conn:
            chat_id, _, _ = self._require_message(conn, message_id)
            index = conn.execute(
                "SELECT MAX(idx) + 1 FROM versions WHERE message_id = ?", (message_id,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO versions (message_id, idx, content, tokens, reasoning) "
                "VALUES (?, ?, ?, ?, ?)",
                (message_id, index, content, packed_or_none(tokens), reasoning),
            )
            conn.execute("UPDATE messages SET current = ? WHERE id = ?", (index, message_id))
            self._touch(conn, chat_id)
            return int(index)

    def update_version(
        self,
        message_id: int,
        content: str,
        index: int | None = None,
        *,
        tokens: list[int] | None = None,
        reasoning: str | None = None,
    ) -> None:
        """Overwrite the current version (or version ``index``): an edit, or a streaming reply's
        text flushed so far. Its saved tokens are replaced by ``tokens`` (unknown if None), its
        reasoning by ``reasoning`` (kept if None)."""
        with self._writing() as conn:
            chat_id, _, current = self._require_message(conn, message_id)
            index = current if index is None else index
            cursor = conn.execute(
                "UPDATE versions SET content = ?, tokens = ?, reasoning = COALESCE(?, reasoning) "
                "WHERE message_id = ? AND idx = ?",
                (content, packed_or_none(tokens), reasoning, message_id, index),
            )
            if cursor.rowcount == 0:
                raise self._no_version(conn, message_id, index)
            self._touch(conn, chat_id)

    def set_tokens(
        self, message_id: int, tokens: list[int] | None, index: int | None = None
    ) -> None:
        """Record the token ids of the current version (or version ``index``) of a message,
        without changing its text or the chat's order in the list."""
        with self._writing() as conn:
            _, _, current = self._require_message(conn, message_id)
            index = current if index is None else index
            cursor = conn.execute(
                "UPDATE versions SET tokens = ? WHERE message_id = ? AND idx = ?",
                (packed_or_none(tokens), message_id, index),
            )
            if cursor.rowcount == 0:
                raise self._no_version(conn, message_id, index)

    def set_current_version(self, message_id: int, index: int) -> None:
        """Show version ``index`` of a message (browsing rerolls)."""
        with self._writing() as conn:
            chat_id, _, _ = self._require_message(conn, message_id)
            exists = conn.execute(
                "SELECT 1 FROM versions WHERE message_id = ? AND idx = ?", (message_id, index)
            ).fetchone()
            if exists is None:
                raise self._no_version(conn, message_id, index)
            conn.execute("UPDATE messages SET current = ? WHERE id = ?", (index, message_id))
            self._touch(conn, chat_id)

    @staticmethod
    def _no_version(conn: sqlite3.Connection, message_id: int, index: int) -> StoreError:
        count = conn.execute(
            "SELECT COUNT(*) FROM versions WHERE message_id = ?", (message_id,)
        ).fetchone()[0]
        return StoreError(
            f"message {message_id} has no version {index}; it has versions 0 to {count - 1}"
        )

    def delete_message(self, message_id: int) -> None:
        with self._writing() as conn:
            chat_id, _, _ = self._require_message(conn, message_id)
            conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            self._touch(conn, chat_id)

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """A chat's messages in order, each with all its versions."""
        with self._reading() as conn:
            self._require_chat(conn, chat_id)
            rows = conn.execute(
                "SELECT m.id, m.role, m.current, v.idx, v.content, v.tokens, v.reasoning "
                "FROM messages m JOIN versions v ON v.message_id = m.id "
                "WHERE m.chat_id = ? ORDER BY m.position, m.id, v.idx",
                (chat_id,),
            ).fetchall()
        found: list[StoredMessage] = []
        for message_id, role, current, index, content, tokens, reasoning in rows:
            if not found or found[-1].id != message_id:
                found.append(StoredMessage(message_id, role, "", [], current))
            message = found[-1]
            message.versions.append(content)
            message.reasonings.append(reasoning)
            if index == current:
                message.content = content
                message.tokens = unpack_tokens(tokens) if tokens is not None else None
        return found
