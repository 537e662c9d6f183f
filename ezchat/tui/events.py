"""What the worker threads tell the UI, as Textual messages.

Workers never touch widgets: they post these messages (``post_message`` is thread-safe) and
the handlers, on the UI thread, update the screen.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from ..chat.reply import Reply
    from ..chat.thread import Thread
    from .chatlog import ChatLog
    from .reply_saver import ReplySaver


class ReplyFeed:
    """Reply text handed from the generation thread to the UI: the worker appends each
    token's text, the UI takes what has gathered on a timer, so however fast the model
    writes the UI redraws at its own pace, never once per token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._reasoning: list[str] = []
        # whether the model is inside its reasoning, and how many tokens it has thought
        self.thinking = False
        self.thinking_tokens = 0

    def push(self, text: str, reasoning: str = "", thinking: bool = False, tokens: int = 0) -> None:
        with self._lock:
            if text:
                self._parts.append(text)
            if reasoning:
                self._reasoning.append(reasoning)
            self.thinking, self.thinking_tokens = thinking, tokens

    def take(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            return text

    def take_reasoning(self) -> str:
        with self._lock:
            text = "".join(self._reasoning)
            self._reasoning.clear()
            return text


class ModelLoaded(Message):
    def __init__(self, thread: Thread, load_seconds: float) -> None:
        super().__init__()
        self.thread = thread
        self.load_seconds = load_seconds


class ModelLoadFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ReplyStarted(Message):
    """The prompt is evaluated and tokens are coming; ``head`` is the text the reply's
    widget starts from (the prefix, the kept part of a branch, or the reply continued)."""

    def __init__(self, kind: str, reply: Reply, head: str, reasoning_head: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.reply = reply
        self.head = head
        self.reasoning_head = reasoning_head


class StreamTick(Message):
    """Time to draw the reply text gathered in the ``ReplyFeed``."""


class ReplyFinished(Message):
    """The reply ended (finished, stopped, or failed with ``error``) and is recorded in the
    Thread when ``recorded`` is True."""

    def __init__(
        self, kind: str, recorded: bool, error: str | None = None, saver: ReplySaver | None = None
    ) -> None:
        super().__init__()
        self.kind = kind
        self.recorded = recorded
        self.error = error
        self.saver = saver  # what the worker stored of a recorded reply


class SaveFailed(Message):
    """A write to the chats file failed (posted from whichever thread tried it)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class CandidatesReady(Message):
    """Candidates for one token position of a reply, computed in a worker."""

    def __init__(self, index: int, position: int, candidates: list, chosen: int | None) -> None:
        super().__init__()
        self.index = index
        self.position = position
        self.candidates = candidates
        self.chosen = chosen


class ChatOpened(Message):
    """The open-chat worker read a saved chat and restored its cache: ``chat`` (a ChatLog) is
    ready to show, with ``notes`` to tell the user (a changed model, a chat held elsewhere)."""

    def __init__(self, thread: Thread, chat: ChatLog, notes: list[str]) -> None:
        super().__init__()
        self.thread = thread
        self.chat = chat
        self.notes = notes


class ChatOpenFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
