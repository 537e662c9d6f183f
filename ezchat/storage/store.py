"""Saved chats: every message, every version of every reply, the chat's settings and llama.cpp's
KV state, in one SQLite file in the user data dir.

Every write commits at once, so an app killed mid-reply keeps every completed message (and the
partial text it last flushed). The file carries a schema version: opening an older file runs the
missing migrations in order; a newer or damaged file is refused with a message that names it and
the fix. The store is safe to share between threads (one lock around one connection), so a
generation worker may flush a streaming reply while the UI reads the chat list.

The glue between a stored chat and a live ``Thread`` (``thread_from_store``, ``restore_state``,
``save_thread_state``, ``chat_from_thread``) lives in ``ezchat.storage.chats``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..chat.roles import ROLE_TABLE, ROLES, normalize_role
from ..chat.samplers import SamplerSettings, sampler_setting
from ..errors import EzChatError
from ..settings import paths
from .chatlocks import ChatLocks

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 40
STORE_FILENAME = "chats.sqlite3"
SETTINGS = ("model", "format", "sampler", "system_prompt")
# A KV state takes about 22 KB a token for the default model (70 MB for a 3,000-token chat), so
# only the chats saved most recently keep theirs; the others re-evaluate when reopened.
MAX_SAVED_STATES = 5
EXPORT_KIND = "ezchat-chat"
EXPORT_VERSION = 1

# Each entry moves the schema one version up; the file records how many have run. Never edit a
# shipped entry: add a new one.
MIGRATIONS: list[str] = [
    # v1: chats with their settings, messages in order, each message's versions, and one saved
    # KV state per chat.
    """
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        format TEXT NOT NULL DEFAULT '',
        sampler TEXT NOT NULL DEFAULT '',
        system_prompt TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX chats_by_updated ON chats(updated);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL,
        current INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_by_chat ON messages(chat_id, position);
    CREATE TABLE versions (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (message_id, idx)
    );
    CREATE TABLE states (
        chat_id INTEGER PRIMARY KEY REFERENCES chats(id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        tokens BLOB NOT NULL,
        state BLOB NOT NULL,
        saved REAL NOT NULL
    );
    """,
    # v2: the token ids a reply was generated as. Re-tokenizing a reply's text can split it
    # differently, and then a reopened chat's prompt would part from its saved KV state there.
    "ALTER TABLE versions ADD COLUMN tokens BLOB;",
    # v3: a reply's reasoning, apart from its answer (ezchat.chat.reasoning).
    "ALTER TABLE versions ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';",
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(EzChatError):
    """The saved-chats file cannot be used, or a chat or message it names does not exist."""


@dataclass(frozen=True, slots=True)
class ChatSummary:
    id: int
    title: str
    created: datetime
    updated: datetime
    n_messages: int
    model: str


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


def default_store_path() -> Path:
    return paths.data_dir() / STORE_FILENAME


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


def pack_tokens(tokens: list[int]) -> bytes:
    """Token ids as little-endian int32s: 4 bytes a token, readable on any machine."""
    packed = array("i", tokens)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack_tokens(data: bytes) -> list[int]:
    packed = array("i")
    packed.frombytes(data)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def _timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value).astimezone()


class ChatStore:
    """Saved chats in one SQLite file (default: ``chats.sqlite3`` in the user data dir)."""

    def __init__(
        self, path: str | Path | None = None, *, max_states: int = MAX_SAVED_STATES
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.max_states = max_states
        # the chats an app has open for writing; see ezchat.storage.chatlocks
        self.locks = ChatLocks(self.path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder for saved chats {self.path.parent} ({exc.strerror}); "
                "check its permissions or set EZCHAT_HOME to a writable folder"
            ) from None
        try:
            # isolation_level=None: no implicit transactions; each write below opens and commits
            # its own, so nothing waits in an open transaction when the app is killed.
            conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._unwritable() or self._unusable(exc) from None
        try:
            # Takes effect only in a new file (before WAL mode writes its header): lets deleted
            # chats and states give their pages back to the file system (see _reclaim).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL loses nothing when the app is killed (only on power loss), and
            # spares an fsync per flushed token batch.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
            self._migrate()
        except sqlite3.Error as exc:
            conn.close()
            self._conn = None
            locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
            if locked:
                raise self._failed(exc) from None
            raise self._unwritable() or self._unusable(exc) from None
        except StoreError:
            conn.close()
            self._conn = None
            raise

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        self.locks.release_all()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChatStore({str(self.path)!r})"

    # --- plumbing ------------------------------------------------------------------------------

    def _unusable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"{self.path} is not a readable ezchat chat store ({exc}); move it aside "
            f"(e.g. rename it to {self.path.name}.bad) and ezchat starts a new one"
        )

    def _unwritable(self) -> StoreError | None:
        """Why the file cannot be opened when the cause is permissions, not its contents: SQLite
        says "unable to open" or "readonly" either way."""
        folder = self.path.parent
        if not self.path.exists() and not os.access(folder, os.W_OK | os.X_OK):
            return StoreError(
                f"cannot create {self.path}: the folder {folder} is not writable; make it "
                "writable (chmod u+w) or set EZCHAT_HOME to a writable folder"
            )
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return StoreError(
                f"{self.path} is read-only, so chats cannot be saved to it; make it writable "
                "(chmod u+w) or set EZCHAT_HOME to another folder"
            )
        if self.path.exists() and not os.access(folder, os.W_OK | os.X_OK):
            # WAL mode keeps its -wal and -shm files beside the database
            return StoreError(
                f"the folder {folder} is not writable, and {self.path.name} needs to create its "
                "journal files there; make it writable (chmod u+w) or set EZCHAT_HOME"
            )
        return None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the chat store {self.path} is closed; open a new ChatStore")
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self._failed(exc) from None

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed when the block ends (rolled back if it raises)."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc) from None

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(
                f"{self.path} is busy (another ezchat is writing to it); try again in a moment"
            )
        return StoreError(
            f"{self.path}: reading or writing saved chats failed ({exc}); check the disk has "
            f"room, or move the file aside (e.g. to {self.path.name}.bad) to start afresh"
        )

    def _migrate(self) -> None:
        conn = self._connection()
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if "schema_version" in tables:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = int(row[0]) if row else 0
        elif tables:
            raise StoreError(
                f"{self.path} is an SQLite file but not ezchat's saved chats (it has tables "
                f"{', '.join(sorted(tables))}); move it aside or pass another path"
            )
        else:
            version = 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} holds saved chats of schema version {version}, newer than this "
                f"ezchat knows ({SCHEMA_VERSION}); upgrade ezchat, or move the file aside"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits first, so the whole step runs in its own transaction
            conn.executescript(
                "BEGIN IMMEDIATE;\n"
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);\n"
                f"{MIGRATIONS[number - 1]}\n"
                "DELETE FROM schema_version;\n"
                f"INSERT INTO schema_version (version) VALUES ({number});\n"
                "COMMIT;"
            )

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])

    def _require_chat(self, conn: sqlite3.Connection, chat_id: int) -> tuple:
        row = conn.execute(
            "SELECT id, title, created, updated, model, format, sampler, system_prompt "
            "FROM chats WHERE id = ?",
            (chat_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no saved chat with id {chat_id}; see `ezchat chat list`")
        return row

    def _require_message(self, conn: sqlite3.Connection, message_id: int) -> tuple[int, int, int]:
        """(chat_id, position, current) of a message."""
        row = conn.execute(
            "SELECT chat_id, position, current FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no saved message with id {message_id}; it may have been deleted")
        return row

    def _touch(self, conn: sqlite3.Connection, chat_id: int) -> None:
        conn.execute("UPDATE chats SET updated = ? WHERE id = ?", (time.time(), chat_id))

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

    # --- chats ---------------------------------------------------------------------------------

    def create_chat(
        self,
        title: str = DEFAULT_TITLE,
        *,
        model: str = "",
        format: str = "",
        sampler: Any = "",
        system_prompt: str = "",
        created: float | None = None,
    ) -> int:
        """A new empty chat; returns its id. ``sampler`` is a preset name or SamplerSettings."""
        now = time.time()
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO chats (title, created, updated, model, format, sampler, "
                "system_prompt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    title,
                    created if created is not None else now,
                    now,
                    str(model),
                    str(format),
                    _sampler_text(sampler),
                    system_prompt,
                ),
            )
            return int(cursor.lastrowid)

    _SUMMARY_SQL = (
        "SELECT c.id, c.title, c.created, c.updated, "
        "(SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id), c.model FROM chats c "
    )

    @staticmethod
    def _summary(row: tuple) -> ChatSummary:
        return ChatSummary(
            int(row[0]), row[1], _timestamp(row[2]), _timestamp(row[3]), int(row[4]), row[5]
        )

    def chats(self) -> list[ChatSummary]:
        """Every saved chat, the most recently changed first."""
        with self._reading() as conn:
            rows = conn.execute(self._SUMMARY_SQL + "ORDER BY c.updated DESC, c.id DESC")
            return [self._summary(row) for row in rows]

    def last_chat(self) -> ChatSummary | None:
        with self._reading() as conn:
            row = conn.execute(
                self._SUMMARY_SQL + "ORDER BY c.updated DESC, c.id DESC LIMIT 1"
            ).fetchone()
            return self._summary(row) if row else None

    def chat(self, chat_id: int) -> ChatSummary:
        with self._reading() as conn:
            self._require_chat(conn, chat_id)
            return self._summary(
                conn.execute(self._SUMMARY_SQL + "WHERE c.id = ?", (chat_id,)).fetchone()
            )

    def chat_settings(self, chat_id: int) -> dict[str, str]:
        """``model``, ``format``, ``sampler`` and ``system_prompt`` as saved ('' when unset)."""
        with self._reading() as conn:
            row = self._require_chat(conn, chat_id)
            return dict(zip(SETTINGS, row[4:8], strict=True))

    def rename_chat(self, chat_id: int, title: str) -> None:
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))
            self._touch(conn, chat_id)

    def update_chat(self, chat_id: int, **settings: Any) -> None:
        """Change any of ``model``, ``format``, ``sampler`` (a preset name or SamplerSettings)
        and ``system_prompt``."""
        unknown = settings.keys() - set(SETTINGS)
        if unknown:
            raise ValueError(
                f"unknown chat setting {', '.join(sorted(unknown))}; use {', '.join(SETTINGS)}"
            )
        if not settings:
            return
        values = {
            key: _sampler_text(value) if key == "sampler" else str(value)
            for key, value in settings.items()
        }
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            conn.execute(
                f"UPDATE chats SET {assignments} WHERE id = ?", (*values.values(), chat_id)
            )
            self._touch(conn, chat_id)

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat with its messages and saved state."""
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        self._reclaim()

    def _reclaim(self) -> None:
        """Give freed pages (a deleted state is tens of MB) back to the file system."""
        with self._reading() as conn:
            # executescript steps the pragma to the end; execute() would free a single page
            conn.executescript("PRAGMA incremental_vacuum;")

    def clear_messages(self, chat_id: int, keep_system: bool = True) -> None:
        """Delete a chat's messages (but its leading system messages, with ``keep_system``)."""
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            first_other = conn.execute(
                "SELECT MIN(position) FROM messages WHERE chat_id = ? AND role != 'system'",
                (chat_id,),
            ).fetchone()[0]
            if keep_system:
                if first_other is not None:
                    conn.execute(
                        "DELETE FROM messages WHERE chat_id = ? AND position >= ?",
                        (chat_id, first_other),
                    )
            else:
                conn.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
            conn.execute("DELETE FROM states WHERE chat_id = ?", (chat_id,))
            self._touch(conn, chat_id)
        self._reclaim()

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
            (message_id, content, _packed(tokens), reasoning),
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
                (message_id, index, content, _packed(tokens), reasoning),
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
                (content, _packed(tokens), reasoning, message_id, index),
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
                (_packed(tokens), message_id, index),
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

    # --- saved KV state ------------------------------------------------------------------------

    def save_state(self, chat_id: int, fingerprint: str, tokens: list[int], state: bytes) -> None:
        """Keep llama.cpp's KV state for a chat (one per chat; replaces the last one). Only
        the ``max_states`` chats saved most recently keep a state."""
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            conn.execute(
                "INSERT OR REPLACE INTO states (chat_id, fingerprint, tokens, state, saved) "
                "VALUES (?, ?, ?, ?, ?)",
                (chat_id, fingerprint, pack_tokens(tokens), bytes(state), time.time()),
            )
            pruned = conn.execute(
                "DELETE FROM states WHERE chat_id != ? AND chat_id NOT IN (SELECT chat_id FROM "
                "states WHERE chat_id != ? ORDER BY saved DESC LIMIT ?)",
                (chat_id, chat_id, max(0, self.max_states - 1)),
            ).rowcount
        if pruned:
            self._reclaim()

    def has_state(self, chat_id: int) -> bool:
        with self._reading() as conn:
            found = conn.execute("SELECT 1 FROM states WHERE chat_id = ?", (chat_id,)).fetchone()
            return found is not None

    def load_state(self, chat_id: int, fingerprint: str) -> tuple[list[int], bytes] | None:
        """The saved tokens and state, or None when there is none or it was saved for another
        model file or settings (``fingerprint`` differs)."""
        with self._reading() as conn:
            row = conn.execute(
                "SELECT fingerprint FROM states WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            if row is None or row[0] != fingerprint:
                return None  # the blob can be large: read it only when it is usable
            tokens, state = conn.execute(
                "SELECT tokens, state FROM states WHERE chat_id = ?", (chat_id,)
            ).fetchone()
        return unpack_tokens(tokens), bytes(state)

    def delete_state(self, chat_id: int) -> None:
        with self._writing() as conn:
            conn.execute("DELETE FROM states WHERE chat_id = ?", (chat_id,))
        self._reclaim()

    # --- export and import ---------------------------------------------------------------------

    def export_json(self, chat_id: int) -> dict[str, Any]:
        """The chat as plain data (no token ids or state): ``import_json`` reads it back."""
        summary = self.chat(chat_id)
        return {
            "kind": EXPORT_KIND,
            "version": EXPORT_VERSION,
            "title": summary.title,
            "created": summary.created.isoformat(),
            "updated": summary.updated.isoformat(),
            "settings": self.chat_settings(chat_id),
            "messages": [_exported(m) for m in self.messages(chat_id)],
        }

    def export_markdown(self, chat_id: int) -> str:
        """The chat for reading: a title, its settings, then each message's current version."""
        return markdown_from_export(self.export_json(chat_id))

    def import_json(self, data: dict[str, Any] | str) -> int:
        """A new chat from ``export_json`` data (a dict or its JSON text); returns its id."""
        title, settings, created, messages = _checked_export(data)
        with self._writing() as conn:
            now = time.time()
            cursor = conn.execute(
                "INSERT INTO chats (title, created, updated, model, format, sampler, "
                "system_prompt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, created or now, now, *(settings.get(key, "") for key in SETTINGS)),
            )
            chat_id = int(cursor.lastrowid)
            for position, (role, versions, current, reasonings) in enumerate(messages):
                message_id = self._insert(
                    conn, chat_id, position, role, versions[0], None, reasonings[0]
                )
                for index, content in enumerate(versions[1:], start=1):
                    conn.execute(
                        "INSERT INTO versions (message_id, idx, content, reasoning) "
                        "VALUES (?, ?, ?, ?)",
                        (message_id, index, content, reasonings[index]),
                    )
                conn.execute("UPDATE messages SET current = ? WHERE id = ?", (current, message_id))
            return chat_id


def markdown_from_export(data: dict[str, Any]) -> str:
    """``export_json`` data (a stored chat's, or an app's chat held in memory) for reading."""
    lines = [f"# {data['title']}", ""]
    settings = dict(data["settings"])
    settings["sampler"] = sampler_label(settings.get("sampler", ""))
    for key in ("model", "format", "sampler"):
        if settings.get(key):
            lines.append(f"- {key}: `{settings[key]}`")
    lines += [f"- saved: {datetime.fromisoformat(data['updated']):%Y-%m-%d %H:%M}", ""]
    for message in data["messages"]:
        versions, current = message["versions"], message["current"]
        heading = ROLE_TABLE[message["role"]].label
        if len(versions) > 1:
            heading += f" (version {current + 1} of {len(versions)})"
        lines += [f"## {heading}", ""]
        reasonings = message.get("reasonings") or [""] * len(versions)
        thought = reasonings[current].strip() if current < len(reasonings) else ""
        if thought:
            lines += ["<details><summary>Reasoning</summary>", "", *thought.splitlines(), ""]
            lines += ["</details>", ""]
        lines += [versions[current].rstrip("\n"), ""]
    return "\n".join(lines)


def sampler_label(setting: str) -> str:
    """A chat's saved sampler for people: the preset name, or the values that differ from
    llama.cpp's defaults when the sampler was edited (``custom (temp=0.3, top_k=7)``)."""
    if not setting.startswith("{"):
        return setting
    try:
        values = json.loads(setting)
        defaults = SamplerSettings().to_dict()
        changed = [
            f"{key}={value}"
            for key, value in values.items()
            if key != "name" and key in defaults and value != defaults[key]
        ]
        name = str(values.get("name", "custom"))
    except (ValueError, AttributeError):
        return "custom"
    return f"{name} ({', '.join(changed)})" if changed else name


def _exported(message: StoredMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "role": message.role,
        "versions": list(message.versions),
        "current": message.current,
    }
    if any(message.reasonings):
        data["reasonings"] = list(message.reasonings)
    return data


def _packed(tokens: list[int] | None) -> bytes | None:
    return pack_tokens(tokens) if tokens is not None else None


def _sampler_text(sampler: Any) -> str:
    if isinstance(sampler, str):
        return sampler
    return sampler_setting(sampler)  # a SamplerSettings: its preset name or its values


def _checked_export(
    data: dict[str, Any] | str,
) -> tuple[str, dict[str, str], float | None, list[tuple[str, list[str], int, list[str]]]]:
    """Validate ``export_json`` data; every problem names the field and what it should be."""

    def bad(where: str, what: str) -> StoreError:
        return StoreError(f"chat import: {where} {what}; fix the file or export the chat again")

    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise bad("the text", f"is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad("the data", "must be a JSON object from an ezchat chat export")
    if data.get("kind", EXPORT_KIND) != EXPORT_KIND:
        raise bad("'kind'", f"is {data.get('kind')!r}, not {EXPORT_KIND!r}")
    version = data.get("version", EXPORT_VERSION)
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise bad("'version'", f"is {version!r}; this ezchat reads up to {EXPORT_VERSION}")
    title = data.get("title", DEFAULT_TITLE)
    if not isinstance(title, str):
        raise bad("'title'", "must be a string")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise bad("'settings'", "must be an object")
    for key, value in settings.items():
        if key not in SETTINGS:
            raise bad(f"settings.{key}", f"is unknown (use {', '.join(SETTINGS)})")
        if not isinstance(value, str):
            raise bad(f"settings.{key}", "must be a string")
    created = None
    if isinstance(data.get("created"), str):
        try:
            created = datetime.fromisoformat(data["created"]).timestamp()
        except ValueError:
            raise bad("'created'", "is not an ISO date") from None
    raw_messages = data.get("messages", [])
    if not isinstance(raw_messages, list):
        raise bad("'messages'", "must be a list")
    messages = []
    for number, item in enumerate(raw_messages):
        where = f"messages[{number}]"
        if not isinstance(item, dict):
            raise bad(where, "must be an object with role and versions")
        role = item.get("role")
        if not isinstance(role, str):
            raise bad(f"{where}.role", f"must be one of {', '.join(ROLES)}")
        try:
            role = normalize_role(role)
        except ValueError:
            raise bad(f"{where}.role", f"is {role!r}; use one of {', '.join(ROLES)}") from None
        versions = item.get("versions")
        if versions is None and isinstance(item.get("content"), str):
            versions = [item["content"]]
        if (
            not isinstance(versions, list)
            or not versions
            or not all(isinstance(v, str) for v in versions)
        ):
            raise bad(f"{where}.versions", "must be a non-empty list of strings")
        current = item.get("current", len(versions) - 1)
        if not isinstance(current, int) or not 0 <= current < len(versions):
            raise bad(f"{where}.current", f"must be an index from 0 to {len(versions) - 1}")
        reasonings = item.get("reasonings", [""] * len(versions))
        if (
            not isinstance(reasonings, list)
            or len(reasonings) != len(versions)
            or not all(isinstance(r, str) for r in reasonings)
        ):
            raise bad(f"{where}.reasonings", "must be a list of strings, one for each version")
        messages.append((role, versions, current, reasonings))
    return title, settings, created, messages
