"""The saved-chats file as one SQLite connection: opened with the pragmas that keep every
write, migrated to the current schema, shared between threads behind one lock, and every
SQLite failure turned into a StoreError that names the file and the fix.

Every write commits at once (``_writing`` is one transaction), so an app killed mid-reply keeps
every completed message and the partial text it last flushed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from ..errors import StoreError
from .schema import SETTINGS, migrate, schema_version


class StoreFile:
    """One SQLite file of saved chats; ``ChatStore`` adds what is stored in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
            migrate(conn, self.path)
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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

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

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return schema_version(conn)

    def _require_chat(self, conn: sqlite3.Connection, chat_id: int) -> tuple:
        row = conn.execute(
            f"SELECT id, title, created, updated, {', '.join(SETTINGS)} FROM chats WHERE id = ?",
            (chat_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no saved chat with id {chat_id}; see `ezchat chat list`")
        return row

    def _touch(self, conn: sqlite3.Connection, chat_id: int) -> None:
        conn.execute("UPDATE chats SET updated = ? WHERE id = ?", (time.time(), chat_id))

    def _reclaim(self) -> None:
        """Give freed pages (a deleted state is tens of MB) back to the file system."""
        with self._reading() as conn:
            # executescript steps the pragma to the end; execute() would free a single page
            conn.executescript("PRAGMA incremental_vacuum;")
