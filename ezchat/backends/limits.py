"""How long ezchat waits for a server and how much it reads from one: the three limits, their
defaults (also in the README), and the messages that name the setting to change.

* ``timeout``: the longest wait for an answer: a whole plain answer, or a stream's first
  event (a big prompt on a slow server is evaluated before that). Connecting, every request
  ``RemoteModel`` makes to learn about the server together, gets this long too.
* ``idle_timeout``: the longest a stream may go between two events once it has started.
* ``max_read``: the most bytes one answer may hold, a whole stream included; one line or
  event of a stream may hold at most ``min(max_read, MAX_EVENT_BYTES)``.

A timeout is not retried: a server that does not answer in time would only be waited on again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import EzChatError

DEFAULT_TIMEOUT = 120.0
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_MAX_READ_MB = 64.0
MAX_EVENT_BYTES = 1 << 20
# The longest the TCP connection itself may take, within the timeout.
CONNECT_TIMEOUT = 10.0
MB = 1 << 20
# The most each limit may be: past these a wait overflows the clock's arithmetic and a size
# the integer it is counted in; a week and a tebibyte are beyond any answer anyway.
MOST_SECONDS = 7 * 24 * 3600.0
MOST_MB = float(1 << 20)

# what each limit is called on the command line and in config.toml, for the messages
_SETTINGS = {
    "timeout": ("--timeout", "server_timeout"),
    "idle_timeout": ("--idle-timeout", "server_idle_timeout"),
    "max_read": ("--max-read-mb", "server_max_read_mb"),
}


class LimitError(EzChatError, ValueError):
    """A limit that is not a positive number."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    timeout: float = DEFAULT_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_read: int = int(DEFAULT_MAX_READ_MB * MB)

    def __post_init__(self) -> None:
        for name in ("timeout", "idle_timeout", "max_read"):
            _check(name, getattr(self, name), MOST_MB * MB if name == "max_read" else MOST_SECONDS)

    @classmethod
    def of(
        cls,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        max_read_mb: float | None = None,
    ) -> ServerLimits:
        """The limits with the given ones in place of the defaults (``None``: the default)."""
        mb = DEFAULT_MAX_READ_MB if max_read_mb is None else max_read_mb
        _check("max_read", mb, MOST_MB)  # in MiB, before it is counted in bytes
        return cls(
            DEFAULT_TIMEOUT if timeout is None else timeout,
            DEFAULT_IDLE_TIMEOUT if idle_timeout is None else idle_timeout,
            int(mb * MB),
        )

    @property
    def max_event(self) -> int:
        return min(self.max_read, MAX_EVENT_BYTES)


def _check(name: str, value: object, most: float) -> None:
    flag, key = _SETTINGS[name]
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise LimitError(f"{name} ({flag}, {key}) must be a positive number, not {value!r}")
    if value > most:
        shown = (
            f"{MOST_MB:.0f} MiB (1 TiB)" if name == "max_read" else f"{MOST_SECONDS:.0f} s (a week)"
        )
        raise LimitError(f"{name} ({flag}, {key}) may be at most {shown}, not {value!r}")


def raise_hint(name: str) -> str:
    """How to allow more of limit ``name``: the flag and the config key."""
    flag, key = _SETTINGS[name]
    return f"allow more with {flag} ({key} in config.toml)"


def human_size(n: int) -> str:
    return f"{n / MB:g} MiB" if n >= MB else f"{n / 1024:g} KiB" if n >= 1024 else f"{n} bytes"
