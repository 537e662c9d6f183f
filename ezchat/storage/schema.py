"""The saved-chats file's tables, their schema version and the migrations between versions,
and how token ids are packed into its blobs.

The file records how many entries of ``MIGRATIONS`` have run (table ``schema_version``).
Opening an older file runs the missing ones in order, each in its own transaction; a newer
file, or an SQLite file that is not ezchat's, is refused with a message naming the fix. A
change to the tables is one SQL script appended to ``MIGRATIONS``; nothing else counts them.
"""

from __future__ import annotations

import sqlite3
import sys
from array import array
from pathlib import Path

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


def unpack_tokens(data: bytes) -> list[int]:
    packed = array("i")
    packed.frombytes(data)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()
