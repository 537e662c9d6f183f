"""Holding ezchat's work in progress at a point the test picks (``ezchat.gates``), so a check
of what happens *while* a reply streams, a grow runs or a batch writes never races the CPU.

In this process, the ``hold`` fixture (conftest.py) installs a ``Hold``; for ezchat in another
process, ``ProcessHold`` gives the environment that installs one there and talks to it through
two FIFOs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ezchat.gates


class Hold:
    """Blocks the first thread to reach ``point`` with ``when(count, text)`` true, until
    ``release()``; every other arrival passes."""

    def __init__(self, point: str, when: Callable[[int, str], bool]) -> None:
        self.point, self.when = point, when
        self.held = threading.Event()  # set once a thread waits at the gate
        self.count, self.text = -1, ""  # what was done when it was held
        self._released = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, point: str, count: int, text: str) -> None:
        if point != self.point or self._released.is_set():
            return
        with self._lock:
            if self.held.is_set() or not self.when(count, text):
                return
            self.count, self.text = count, text
            self.held.set()
        self._released.wait()

    def holds(self, point: str, count: int) -> bool:
        """The same hold for a step on the UI's thread, which asks instead of blocking."""
        if point != self.point or self._released.is_set():
            return False
        with self._lock:
            if not self.held.is_set() and self.when(count, ""):
                self.count = count
                self.held.set()
            return self.held.is_set()

    def release(self) -> None:
        self._released.set()


@contextlib.contextmanager
def holding(point: str, when: Callable[[int, str], bool]):
    """Install a ``Hold`` for the block; it is released and removed at the end, whatever
    happened, so a failing test never leaves a worker waiting."""
    gate = Hold(point, when)
    previous = ezchat.gates.install(gate)
    try:
        yield gate
    finally:
        gate.release()
        ezchat.gates.install(previous)


def at_token(n: int) -> Callable[[int, str], bool]:
    """Hold before the (n+1)th token, once n tokens are out."""
    return lambda count, text: count >= n


class ProcessHold:
    """A hold in a child process: pass ``env`` to it, ``wait_held(process)`` until it is at the
    point, ``release(process)`` to let it go on."""

    def __init__(self, folder: Path, point: str, count: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.held_path, self.release_path = folder / "held", folder / "release"
        os.mkfifo(self.held_path)
        os.mkfifo(self.release_path)
        self.env = {"EZCHAT_GATE": f"{point}:{count}:{folder}"}
        # Opened now without blocking, so waiting for the child can watch whether it lives.
        self._held_fd = os.open(self.held_path, os.O_RDONLY | os.O_NONBLOCK)

    def wait_held(self, process: subprocess.Popen | int) -> str:
        """What the child wrote on reaching the point; fails if it ends first."""
        received = b""
        while not received.endswith(b"\n"):
            assert _alive(process), f"the process ended before the gate: {received!r}"
            # wait for the child's line, looking every 0.1 s whether it still runs
            if select.select([self._held_fd], [], [], 0.1)[0]:
                received += os.read(self._held_fd, 256)
        os.close(self._held_fd)
        return received.decode().strip()

    def release(self, process: subprocess.Popen | int) -> None:
        """Let the child go on (it may already have ended: then nothing waits)."""
        while _alive(process):
            try:
                fd = os.open(self.release_path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: the child has not opened its end yet
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.05)  # in a loop: until the child opens its end of the FIFO
                continue
            os.close(fd)
            return


def _alive(process: subprocess.Popen | int) -> bool:
    if isinstance(process, subprocess.Popen):
        return process.poll() is None
    try:
        state = Path(f"/proc/{process}/stat").read_text().rsplit(") ", 1)[-1][:1]
    except OSError:
        return False
    return state != "Z"
