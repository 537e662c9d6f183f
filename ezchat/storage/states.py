"""llama.cpp's KV state saved with a chat, so reopening a long chat does not evaluate its
history again: one blob per chat, with the tokens it holds and a fingerprint of the model file
and settings it was made with (a state is used only where the fingerprint matches).

A KV state takes about 22 KB a token for the default model (70 MB for a 3,000-token chat), so
only the ``max_states`` chats saved most recently keep theirs; the others re-evaluate when
reopened, and the pages of an evicted state go back to the file system.
"""

from __future__ import annotations

import time

from ..errors import StoreError
from .connection import StoreFile
from .schema import pack_tokens, unpack_tokens

MAX_SAVED_STATES = 5


class SavedStates(StoreFile):
    """The ``states`` table of a StoreFile (mixed into ChatStore); ``max_states`` is set by it."""

    max_states: int = MAX_SAVED_STATES

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
        try:
            return unpack_tokens(tokens), bytes(state)
        except StoreError:
            return None  # a damaged cache is no cache: the chat's prompt is evaluated again

    def delete_state(self, chat_id: int) -> None:
        with self._writing() as conn:
            conn.execute("DELETE FROM states WHERE chat_id = ?", (chat_id,))
        self._reclaim()
