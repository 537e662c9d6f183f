"""Points where long work can be held, so a test can look at it while it is in progress.

The token loops, grow's step loop and the runners' response loop call the installed gate at
known points: ``gate(point, count, text)``. Nothing is installed in normal use, and each loop
reads the gate once before it starts, so the cost per token is one comparison with None.

A test installs a callable that blocks the working thread at the point it wants (the model
stays real, only its pace is the test's), and releases it once it has looked. A test that drives
ezchat in another process sets ``EZCHAT_GATE=POINT:COUNT:DIR`` instead: the first time POINT
is reached with at least COUNT done, the process writes ``POINT COUNT`` into the FIFO
``DIR/held`` (a rendezvous: the write waits for the test to read), then waits until the test
opens the FIFO ``DIR/release`` for writing and closes it.

The points:
    ``token``     before each token of a generation (count: tokens so far; text: the reply so far)
    ``grow``      before each step of a grow (count: steps so far)
    ``response``  after each response of a runner's run (count: responses so far)
    ``fill``      before the app mounts one more message of a chat it opens (count: mounted);
                  this one runs on the UI's thread, so it asks ``holds()`` and never blocks
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from pathlib import Path

Gate = Callable[[str, int, str], None]

_installed: Gate | None = None


def install(gate: Gate | None) -> Gate | None:
    """Make ``gate`` the one every loop calls (None: none); returns the one it replaces."""
    global _installed
    previous, _installed = _installed, gate
    return previous


def installed() -> Gate | None:
    """The gate a loop should call, read once when the loop starts."""
    return _installed


def holds(point: str, count: int) -> bool:
    """For steps on the UI's thread, which must never block: whether the installed gate holds
    ``point`` now (the step then tries again a little later)."""
    gate = _installed
    holding = getattr(gate, "holds", None)
    return holding is not None and holding(point, count)


class FifoGate:
    """The gate of ``EZCHAT_GATE``: holds the first arrival at ``point`` with ``count`` done,
    talking to the test through two FIFOs in ``folder``."""

    def __init__(self, point: str, count: int, folder: Path) -> None:
        self.point, self.count, self.folder = point, count, folder
        self._passed = False

    @classmethod
    def parse(cls, spec: str) -> FifoGate:
        point, count, folder = spec.split(":", 2)
        return cls(point, int(count), Path(folder))

    def __call__(self, point: str, count: int, text: str) -> None:
        if self._passed or point != self.point or count < self.count:
            return
        self._passed = True
        with open(self.folder / "held", "w") as held:  # the test has its end open already
            held.write(f"{point} {count}\n")
        # Wait for the test to open the release FIFO and close it. Not in a blocking open: a
        # signal for the process (the test's SIGINT) may land on another thread, and this one
        # must come back to Python now and then to run its handler.
        release = os.open(self.folder / "release", os.O_RDONLY | os.O_NONBLOCK)
        try:
            waiting = select.poll()
            waiting.register(release, select.POLLIN | select.POLLHUP)
            while not waiting.poll(100):
                pass
        finally:
            os.close(release)


if os.environ.get("EZCHAT_GATE"):
    install(FifoGate.parse(os.environ["EZCHAT_GATE"]))
