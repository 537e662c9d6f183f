"""Saved chats: every message of every branch (a chat is a tree), the chat's settings and
llama.cpp's KV state, in one SQLite file in the user data dir.

``ChatStore`` is the one object callers use. Its rooms: the file, its connection and its
errors (ezchat.storage.connection), the tables and their migrations (schema), the chat's tree
of messages (nodes) and its active path as a list (messages), the saved KV states (states), export and import (exchange);
this module adds the chats themselves. The store is safe to share between threads (one lock
around one connection), so a generation worker may flush a streaming reply while the UI reads
the chat list.

The glue between a stored chat and a live ``Thread`` (``thread_from_store``, ``restore_state``,
``save_thread_state``, ``chat_from_thread``) lives in ``ezchat.storage.chats``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..chat.samplers import sampler_setting
from ..settings import paths
from .chatlocks import ChatLocks
from .exchange import ChatExchange
from .schema import DEFAULT_TITLE, SETTINGS
from .states import MAX_SAVED_STATES, SavedStates

STORE_FILENAME = "chats.sqlite3"


@dataclass(frozen=True, slots=True)
class ChatSummary:
    id: int
    title: str
    created: datetime
    updated: datetime
    n_messages: int
    model: str


def default_store_path() -> Path:
    return paths.data_dir() / STORE_FILENAME


# A stored time that is no time (hand-edited, or imported by an ezchat that did not check
# it) reads as the start of 1970: one odd row must not stop the chat list from opening.
_NO_TIME = 0.0


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(float(value)).astimezone()
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(_NO_TIME).astimezone()


class ChatStore(SavedStates, ChatExchange):
    """Saved chats in one SQLite file (default: ``chats.sqlite3`` in the user data dir)."""

    def __init__(
        self, path: str | Path | None = None, *, max_states: int = MAX_SAVED_STATES
    ) -> None:
        path = Path(path).expanduser() if path is not None else default_store_path()
        self.max_states = max_states
        # the chats an app has open for writing; see ezchat.storage.chatlocks
        self.locks = ChatLocks(path)
        super().__init__(path)

    def close(self) -> None:
        self.locks.release_all()
        super().close()

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
        thinking: str = "",
    ) -> int:
        """A new empty chat; returns its id. ``sampler`` is a preset name or SamplerSettings."""
        now = time.time()
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO chats (title, created, updated, model, format, sampler, "
                "system_prompt, thinking) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    title,
                    created if created is not None else now,
                    now,
                    str(model),
                    str(format),
                    _sampler_text(sampler),
                    system_prompt,
                    thinking,
                ),
            )
            return int(cursor.lastrowid)

    _SUMMARY_SQL = (
        "SELECT c.id, c.title, c.created, c.updated, "
        # the length of the active path: its leaf and every node above it
        "(WITH RECURSIVE path(id) AS (SELECT c.active_leaf UNION SELECT n.parent FROM nodes n "
        "JOIN path p ON n.chat_id = c.id AND n.id = p.id) SELECT COUNT(*) FROM path "
        "WHERE id != 0), c.model FROM chats c "
    )

    @staticmethod
    def _summary(row: tuple) -> ChatSummary:
        title, model = row[1], row[5]
        return ChatSummary(
            int(row[0]),
            title if isinstance(title, str) else DEFAULT_TITLE,
            _timestamp(row[2]),
            _timestamp(row[3]),
            int(row[4]),
            model if isinstance(model, str) else "",
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
        """``model``, ``format``, ``sampler``, ``system_prompt`` and ``thinking`` as saved ('' when
        unset)."""
        with self._reading() as conn:
            row = self._require_chat(conn, chat_id)
            return dict(zip(SETTINGS, row[4 : 4 + len(SETTINGS)], strict=True))

    def rename_chat(self, chat_id: int, title: str) -> None:
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            conn.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))
            self._touch(conn, chat_id)

    def update_chat(self, chat_id: int, **settings: Any) -> None:
        """Change any of ``model``, ``format``, ``sampler`` (a preset name or SamplerSettings),
        ``system_prompt`` and ``thinking``."""
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


def _sampler_text(sampler: Any) -> str:
    if isinstance(sampler, str):
        return sampler
    return sampler_setting(sampler)  # a SamplerSettings: its preset name or its values
