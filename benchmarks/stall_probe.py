"""Where the UI thread blocks: a heartbeat on the event loop and a watchdog thread.

``StallProbe.start()`` (from inside the running loop) starts a task that notes the time every
few milliseconds, and a thread that, whenever the note is older than ``threshold`` seconds,
samples the event loop thread's stack every ``SAMPLE_SECONDS``. When the loop beats again the
stall is recorded with its length and the stack seen most often during it, so a report names
the code that kept keys from being handled, measured rather than guessed.

The watchdog needs the GIL to sample, so a stall spent in C code that holds the GIL shows the
Python line that called it; a stall caused by another thread holding the GIL shows the loop
thread waiting wherever it was.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

BEAT_SECONDS = 0.002
SAMPLE_SECONDS = 0.005
EARLY_SECONDS = 0.01
FRAMES_SHOWN = 6  # the innermost frames of ezchat or textual kept per stack


@dataclass
class Stall:
    seconds: float
    started: float  # perf_counter at its start
    stacks: collections.Counter[tuple[str, ...]] = field(default_factory=collections.Counter)
    others: collections.Counter[str] = field(default_factory=collections.Counter)

    def top_stack(self) -> tuple[str, ...]:
        return self.stacks.most_common(1)[0][0] if self.stacks else ()


def _short(filename: str) -> str:
    for package in ("/ezchat/", "/textual/", "/rich/", "/markdown_it/", "/asyncio/"):
        if package in filename:
            return filename[filename.rfind(package) + 1 :]
    return filename.rsplit("/", 1)[-1]


def _our_frames(frame) -> tuple[str, ...]:
    """The stack as 'file:line function' from outermost to innermost, keeping only ezchat's
    and Textual's frames (asyncio's and the standard library's say little), or the innermost
    of all when none of theirs is on it (the loop waiting, or another thread holding the GIL)."""
    stack = traceback.extract_stack(frame)
    ours = [s for s in stack if any(p in s.filename for p in ("/ezchat/", "/textual/", "/rich/"))]
    return tuple(
        f"{_short(s.filename)}:{s.lineno} {s.name}" for s in (ours or stack)[-FRAMES_SHOWN:]
    )


def _other_threads(loop_thread: int) -> tuple[str, ...]:
    """The innermost frame of each other thread that is running Python outside a wait."""
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    for ident, frame in sys._current_frames().items():
        if ident in (loop_thread, threading.get_ident()):
            continue
        summary = traceback.extract_stack(frame)[-1]
        if summary.name in ("wait", "_worker", "select", "sleep", "get", "_wait_for_tstate_lock"):
            continue
        busy.append(f"[{names.get(ident, ident)}] {_short(summary.filename)}:{summary.lineno}")
    return tuple(busy)


class StallProbe:
    def __init__(self, threshold: float = 0.05) -> None:
        self.threshold = threshold
        self.stalls: list[Stall] = []
        self._last_beat = time.perf_counter()
        self._loop_thread = threading.get_ident()
        self._running = False
        self._task: asyncio.Task | None = None
        self._watchdog: threading.Thread | None = None
        # (generation, start, seconds) of each collection on the loop thread
        self.gc_pauses: list[tuple[int, float, float]] = []
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif threading.get_ident() == self._loop_thread:
            pause = time.perf_counter() - self._gc_started
            self.gc_pauses.append((info["generation"], self._gc_started, pause))

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._loop_thread = threading.get_ident()
        self._last_beat = time.perf_counter()
        self._running = True
        self._task = asyncio.get_running_loop().create_task(self._beat())
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._running = False
        if self._task is not None:
            self._task.cancel()
        if self._watchdog is not None:
            self._watchdog.join()

    async def _beat(self) -> None:
        while self._running:
            self._last_beat = time.perf_counter()
            await asyncio.sleep(BEAT_SECONDS)

    def _watch(self) -> None:
        # sampled from EARLY_SECONDS on, so a stall's stack covers its start too; kept only
        # when it grows past the threshold
        current: Stall | None = None
        while self._running:
            time.sleep(SAMPLE_SECONDS)
            beat = self._last_beat
            late = time.perf_counter() - beat
            if current is not None and current.started != beat:
                if current.seconds > self.threshold:
                    self.stalls.append(current)
                current = None
            if late > EARLY_SECONDS:
                if current is None:
                    current = Stall(late, beat)
                current.seconds = late
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    current.stacks[_our_frames(frame)] += 1
                current.others.update(_other_threads(self._loop_thread))

    def report(self, since: float = 0.0, limit: int = 8) -> str:
        """The longest stalls after ``since`` (perf_counter), each with its commonest stack."""
        stalls = sorted((s for s in self.stalls if s.started >= since), key=lambda s: -s.seconds)
        if not stalls:
            return f"  no stall over {self.threshold * 1000:.0f} ms"
        lines = [
            f"  {len(stalls)} stalls over {self.threshold * 1000:.0f} ms, "
            f"worst {stalls[0].seconds * 1000:.0f} ms; the longest:"
        ]
        for stall in stalls[:limit]:
            at = stall.started - since
            lines.append(f"  {stall.seconds * 1000:.0f} ms at +{at:.2f} s:")
            lines += [f"      {frame}" for frame in stall.top_stack()]
            lines += [
                f"      other thread: {t} ({n} samples)" for t, n in stall.others.most_common(2)
            ]
        slow_gc = [(g, at, t) for g, at, t in self.gc_pauses if t > 0.01 and at >= since]
        if slow_gc:
            lines.append("  garbage collections over 10 ms on the loop thread:")
            lines += [
                f"      generation {g}: {t * 1000:.0f} ms at +{at - since:.2f} s"
                for g, at, t in slow_gc
            ]
        return "\n".join(lines)
