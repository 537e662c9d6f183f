"""``Message``, one message of a conversation, as easy-llama's Thread holds it."""

from __future__ import annotations

from typing import Any


class Message(dict):
    """A dict with ``role``, ``prefix``, ``content`` and ``postfix``; a reply that reasoned
    has its reasoning apart from its answer (``content``) in ``reasoning``."""

    # For a bot reply: the start the user wrote for it (a prefix), which a reroll keeps.
    reply_prefix = ""

    def __init__(self, role: str, content: str, prefix: str = "", postfix: str = "", **extra: Any):
        super().__init__(role=role, prefix=prefix, content=content, postfix=postfix, **extra)

    def as_string(self) -> str:
        return f"{self['prefix']}{self['content']}{self['postfix']}"

    def copy_message(self) -> Message:
        """A new Message with the same fields and reply prefix (for a sibling node)."""
        twin = Message(**self)
        twin.reply_prefix = self.reply_prefix
        return twin

    def __repr__(self) -> str:
        return f"Message({self['role']!r}, {self['content']!r})"
