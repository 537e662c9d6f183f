"""Which saved chats this process has open for writing, so two ezchat apps never write one chat.

Two apps that resume the same chat would otherwise append both conversations to it, turn by
turn. Each chat an app writes is claimed with an advisory lock (``flock``) on a small file
beside the store, ``<store>.locks/chat-<id>.lock``. The operating system drops the lock when
the holder exits however it exits (kill -9 included), so a crash never leaves a chat locked.
``flock`` locks belong to an open file, so two apps in one process exclude each other too.

Where locking is not available (no ``fcntl``, a folder that cannot be written), a claim
succeeds: locking guards against a mistake and must not stop anyone chatting.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class ChatLocks:
    """The chats of one store this object holds; ``release_all`` (or exit) frees them."""

    def __init__(self, store_path: Path) -> None:
        self.folder = store_path.with_name(store_path.name + ".locks")
        self._held: dict[int, int] = {}  # chat id -> the open lock file's descriptor

    def claim(self, chat_id: int) -> bool:
        """True when this object now holds ``chat_id`` (or already did); False when another
        holder has it open."""
        if chat_id in self._held or fcntl is None:
            return True
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / f"chat-{chat_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:  # a file system without flock: go on unguarded
            os.close(fd)
            return True
        self._held[chat_id] = fd
        return True

    def release(self, chat_id: int) -> None:
        fd = self._held.pop(chat_id, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the file drops its flock

    def release_all(self) -> None:
        for chat_id in list(self._held):
            self.release(chat_id)
