"""The saved-chats file's tables, their schema version and the migrations between versions,
and how token ids are packed into its blobs.

A chat's messages are the rows of ``nodes``: a tree (ezchat.chat.tree) numbered per chat, each
row naming its parent (0: the root, which holds no message) and the child followed last
(``chosen``); ``chats.active_leaf`` is the end of the path in use.

The file records how many entries of ``MIGRATIONS`` have run (table ``schema_version``).
Opening an older file runs the missing ones in order, each in its own transaction; a newer
file, or an SQLite file that is not ezchat's, is refused with a message naming the fix. A
change to the tables is one SQL script appended to ``MIGRATIONS``; nothing else counts them.
"""

from __future__ import annotations

import sqlite3
import sys
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import StoreError

# A chat's settings: columns of ``chats``, in this order (ChatStore.chat_settings, the export).
# ``thinking``: the chat's thinking switch, "on", "off" or "" (the template's default).
SETTINGS = ("model", "format", "sampler", "system_prompt", "thinking")
# A new chat's title, until its first user message names it.
DEFAULT_TITLE = "New chat"

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
    # v4: the chat's thinking switch (ezchat.chat.reasoning.thinking_setting).
    "ALTER TABLE chats ADD COLUMN thinking TEXT NOT NULL DEFAULT '';",
    # v5: a chat is a tree (ezchat.chat.tree). Every version of every message becomes a node,
    # numbered per chat in message then version order; the messages after a message hang
    # under the version of it that was shown, so every path the chat had is kept. The old
    # tables are dropped: the nodes are the one record of a chat's messages.
    """
    CREATE TABLE nodes (
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        id INTEGER NOT NULL,
        parent INTEGER NOT NULL,
        chosen INTEGER NOT NULL DEFAULT 0,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        reasoning TEXT NOT NULL DEFAULT '',
        tokens BLOB,
        token_info BLOB,
        origin TEXT NOT NULL DEFAULT 'message',
        bookmarked INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        PRIMARY KEY (chat_id, id)
    );
    CREATE INDEX nodes_by_parent ON nodes(chat_id, parent);
    ALTER TABLE chats ADD COLUMN active_leaf INTEGER NOT NULL DEFAULT 0;
    CREATE TEMP TABLE old_nodes AS
        SELECT m.chat_id, m.role, m.current, v.idx, v.content, v.tokens, v.reasoning,
            DENSE_RANK() OVER (PARTITION BY m.chat_id ORDER BY m.position, m.id) AS step,
            ROW_NUMBER() OVER (PARTITION BY m.chat_id ORDER BY m.position, m.id, v.idx) AS node
        FROM messages m JOIN versions v ON v.message_id = m.id;
    CREATE TEMP TABLE shown AS
        SELECT chat_id, step,
            COALESCE(MAX(CASE WHEN idx = current THEN node END), MAX(node)) AS node
        FROM old_nodes GROUP BY chat_id, step;
    INSERT INTO nodes (chat_id, id, parent, chosen, role, content, reasoning, tokens, origin,
        created)
    SELECT o.chat_id, o.node,
        COALESCE((SELECT s.node FROM shown s WHERE s.chat_id = o.chat_id
            AND s.step = o.step - 1), 0),
        CASE WHEN o.node = here.node THEN COALESCE((SELECT s.node FROM shown s
            WHERE s.chat_id = o.chat_id AND s.step = o.step + 1), 0) ELSE 0 END,
        o.role, o.content, o.reasoning, o.tokens,
        CASE WHEN o.idx > 0 THEN 'version' WHEN o.role = 'bot' THEN 'reply' ELSE 'message' END,
        c.created
    FROM old_nodes o
        JOIN shown here ON here.chat_id = o.chat_id AND here.step = o.step
        JOIN chats c ON c.id = o.chat_id;
    UPDATE chats SET active_leaf = COALESCE((SELECT s.node FROM shown s
        WHERE s.chat_id = chats.id ORDER BY s.step DESC LIMIT 1), 0);
    DROP TABLE old_nodes;
    DROP TABLE shown;
    DROP TABLE versions;
    DROP TABLE messages;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file at ``path`` (open as ``conn``) up to ``SCHEMA_VERSION``."""
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
            f"{path} is an SQLite file but not ezchat's saved chats (it has tables "
            f"{', '.join(sorted(tables))}); move it aside or pass another path"
        )
    else:
        version = 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} holds saved chats of schema version {version}, newer than this "
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


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])


def pack_tokens(tokens: list[int]) -> bytes:
    """Token ids as little-endian int32s: 4 bytes a token, readable on any machine."""
    packed = array("i", tokens)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def packed_or_none(tokens: list[int] | None) -> bytes | None:
    return pack_tokens(tokens) if tokens is not None else None


def unpacked_or_noted(
    unpack: Callable[[bytes], Any], blob: Any, where: str, notes: list[str]
) -> Any | None:
    """A saved blob read with ``unpack``; None when there is none, or when it is damaged,
    which is noted: the message's text is kept, and what the blob held is worked out again."""
    if blob is None:
        return None
    try:
        return unpack(bytes(blob))
    except StoreError as error:
        notes.append(f"{where}: {error}")
        return None


def unpack_tokens(data: bytes) -> list[int]:
    """The token ids ``pack_tokens`` wrote; a blob cut short or overwritten is a StoreError."""
    if len(data) % array("i").itemsize:
        raise StoreError(
            f"saved token ids are damaged ({len(data)} bytes, not 4 a token); the text is "
            "kept and counted again"
        )
    packed = array("i")
    packed.frombytes(data)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()
