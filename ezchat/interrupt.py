"""Ctrl-C during a generation: stop it between two tokens instead of raising mid-step.

A ``KeyboardInterrupt`` raised inside the token loop could land between a llama.cpp call and
the bookkeeping after it. While a generation runs, the REPL and the CLI route SIGINT to
``cancel()`` instead, so the loop ends cleanly and the partial reply is kept.
"""

from __future__ import annotations

import itertools
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

COMMAND = "ezchat"


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class CancelOnSigint:
    """Context manager: while inside, SIGINT cancels the watched generation (or reply) and sets
    ``requested``. Only the main thread receives signals; in other threads it does nothing."""

    def __init__(self) -> None:
        self.target: Cancellable | None = None
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> CancelOnSigint:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            # None means the old handler was not set from Python; the default is the safe guess.
            signal.signal(
                signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous
            )
            self._installed = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.target is not None:
            self.target.cancel()

    def watch(self, target: Cancellable) -> None:
        """Cancel ``target`` on Ctrl-C; at once if Ctrl-C came while it was being started
        (the prompt is evaluated before the first token)."""
        self.target = target
        if self.requested:
            target.cancel()


def _is_the_command() -> bool:
    """Whether this process is the ``ezchat`` command (its script, or ``python -m ezchat``)."""
    if Path(sys.argv[0]).name == COMMAND:
        return True
    argv = getattr(sys, "orig_argv", [])
    return any(flag == "-m" and name == COMMAND for flag, name in itertools.pairwise(argv))


def _quiet_interrupts_in_the_command() -> None:
    """In the ``ezchat`` command, a Ctrl-C that ends it before its own handling is in place
    (while its modules import, the first 0.15-0.3 s) says so in one line instead of a
    traceback. The process still ends by SIGINT, as Python ends it. Elsewhere (ezchat used as
    a library) Python's hook stays."""
    if not _is_the_command():
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.stderr.write(f"{COMMAND}: interrupted\n")
            return
        previous(kind, value, traceback)

    sys.excepthook = hook


# On import: ezchat/__init__.py imports this module before anything heavy.
_quiet_interrupts_in_the_command()
