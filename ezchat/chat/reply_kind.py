"""The kinds of reply a chat can start, named once for the Thread, the TUI and the REPL.

A ``StrEnum``: each kind equals its plain name ("reply", "reroll", ...), so messages that
carry a kind, saved text and the REPL's command words compare with it unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class ReplyKind(StrEnum):
    REPLY = "reply"  # a new bot message after the user's
    REROLL = "reroll"  # a new version of the last bot message, to the same prompt
    CONTINUE = "continue"  # the last bot message's current version grows
    BRANCH = "branch"  # a new version of the last bot message, forked at one of its tokens

    @property
    def adds_version(self) -> bool:
        """True when the reply is stored as a new version of the last message."""
        return self in (ReplyKind.REROLL, ReplyKind.BRANCH)
