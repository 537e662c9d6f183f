"""The context pane: how full the context is, what the last turn cost, the model's facts and
the sampler in use.

Counting tokenizes the whole history (0.7 s for 2,000 messages on a slow CPU, a round trip for
a server), so the pane counts in a thread worker, holding the model lock, and the worker posts
``ContextPane.Counted`` back. Until the first count arrives the pane says "counting…"; a
recount keeps the last numbers on screen until the new ones come. Only the newest request's
answer is shown, so a chat switched away from never overwrites the next one's numbers."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from ..chat.samplers import SamplerSettings
from ..engine.model import kv_cache_type_name
from ..errors import EzChatError
from ..safetext import visible

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..chat.context_stats import ContextStats
    from ..chat.thread import Thread

BAR_CELLS = 24
FILL_CHECK_SECONDS = 0.1  # how often a count waiting for the conversation's fill looks again
_DEFAULT_SAMPLER = SamplerSettings()


def usage_bar(used: int, limit: int, cells: int = BAR_CELLS) -> str:
    filled = round(cells * min(1.0, used / limit)) if limit else 0
    return "█" * filled + "░" * (cells - filled)


def short_count(n: int) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def model_facts(model: Backend) -> list[str]:
    """What the pane says about the model: a local file's facts, or the server's."""
    if not model.runs_in_process:
        return [
            f"Server {model.base_url}",
            f"Serves {model.model_id or 'its default model'} ({model.server_kind})",
            f"Context {model.context_length}",
        ]
    return [
        f"{Path(model.filename).name}",
        f"{model.gguf.architecture} · {short_count(model.n_params)} params · {model.quantization}",
        f"Native context {model.n_ctx_train}",
        f"RoPE base {model.rope_freq_base:g} · scale {model.ctx_scale:.2f}",
        f"GPU layers {model.n_gpu_layers} · flash attn {'on' if model.flash_attn else 'off'}",
        f"KV cache {kv_cache_type_name(model.type_k)}/{kv_cache_type_name(model.type_v)}",
    ]


def sampler_summary(sampler: SamplerSettings) -> str:
    """The sampler's name and the values it changes from llama.cpp's defaults."""
    changed = [
        f"{f.name} {getattr(sampler, f.name)}"
        for f in fields(sampler)
        if f.name not in ("name", "dry_sequence_breakers")
        and getattr(sampler, f.name) != getattr(_DEFAULT_SAMPLER, f.name)
    ]
    return sampler.name + ("\n  " + "\n  ".join(changed) if changed else "")


class ContextPane(Static):
    """``used``, ``limit`` and ``stats`` hold the numbers last shown: the tokens in the context
    window, its size, and the thread's ContextStats (what was left out, the whole history).
    ``counting`` is True from a request until its answer is shown."""

    class Counted(Message):
        """The counting worker's answer to request ``request``: ``stats``, or ``error``."""

        bubble = False

        def __init__(
            self,
            request: int,
            stats: ContextStats | None,
            error: str | None,
        ) -> None:
            super().__init__()
            self.request = request
            self.stats = stats
            self.error = error

    def __init__(self, **kwargs) -> None:
        super().__init__("Loading…", **kwargs)
        self.used = 0
        self.limit = 0
        self.stats: ContextStats | None = None
        self.counting = False
        self._request = 0
        self._thread: Thread | None = None
        self._show_timings = True
        self._already_said: str | None = None
        self._lock: threading.Lock | None = None
        # guards the request fields between the UI thread and the worker
        self._handoff = threading.Lock()
        self._worker_running = False

    def on_mount(self) -> None:
        self.border_title = "Context"

    def refresh_from(
        self,
        thread: Thread,
        show_timings: bool = True,
        *,
        lock: threading.Lock | None = None,
        already_said: str | None = None,
    ) -> None:
        """Count the thread's numbers in a worker (holding ``lock``, the model's) and show them
        when done. ``show_timings=False`` leaves out speeds and times (they differ from run to
        run; snapshots need fixed text). A count that fails (a server gone) keeps the last
        numbers and is told once, unless it is ``already_said``."""
        with self._handoff:
            self._request += 1
            if thread is not self._thread:
                self.stats = None  # another chat: its numbers are not this one's
            self._thread, self._show_timings = thread, show_timings
            self._already_said, self._lock = already_said, lock
            start = not self._worker_running
            self._worker_running = True
        self.counting = True
        self._draw(self.stats)
        if start:
            # after the next paint: a chat being opened is drawn first
            self.call_after_refresh(self._start_counting)

    def _start_counting(self) -> None:
        """Start the worker once the conversation has filled the screen. The count holds the
        GIL for its Python parts (0.3 s for 2,000 messages) and the fill runs on the UI
        thread: while both ran, keys typed then echoed up to 128 ms late, one after the other
        well under 50 ms (benchmarks/open_chat.py --stalls)."""
        from .conversation import ConversationView

        if any(view.filling for view in self.screen.query(ConversationView)):
            self.set_timer(FILL_CHECK_SECONDS, self._start_counting)
            return
        self.run_worker(self._count, thread=True, group="context-count", exit_on_error=False)

    def _count(self) -> None:
        """The worker: count for the newest request, and again while newer ones came in
        meanwhile (one worker at a time: each count holds the model lock and the GIL)."""
        while True:
            with self._handoff:
                request, thread, lock = self._request, self._thread, self._lock
            try:
                with lock if lock is not None else contextlib.nullcontext():
                    stats = thread.context_stats()
            except BaseException as error:
                if not isinstance(error, EzChatError):
                    with self._handoff:
                        self._worker_running = False  # the next request starts a worker
                    raise
                self.post_message(self.Counted(request, None, str(error)))
            else:
                self.post_message(self.Counted(request, stats, None))
            with self._handoff:
                if self._request == request:
                    self._worker_running = False
                    return

    def on_context_pane_counted(self, message: Counted) -> None:
        if message.request != self._request:
            return  # a newer request is on its way
        self.counting = False
        if message.error is not None and message.error != self._already_said:
            self.notify(message.error, severity="error", timeout=8)
        self._draw(message.stats or self.stats, failed=message.error is not None)

    def _draw(self, stats: ContextStats | None, failed: bool = False) -> None:
        thread = self._thread
        if thread is None:
            return
        model = thread.model
        lines: list[Content | str] = []
        if stats is None:
            lines.append(
                Content.assemble(("Context ", "bold"), "not counted" if failed else "counting…")
            )
        else:
            self.stats = stats
            self.used = used = stats.in_context
            self.limit = limit = stats.context_length
            lines += [
                Content.assemble(("Context ", "bold"), f"{used} / {limit} tokens"),
                Content.assemble((usage_bar(used, limit), "$accent"), f" {stats.fraction:.0%}"),
                f"History {stats.messages} messages · {stats.history_tokens} tokens",
            ]
        if stats is not None and stats.left_out:
            lines.append(
                Content.styled(
                    f"Left out: the {stats.left_out} oldest of {stats.messages} messages",
                    "$warning",
                )
            )
            if model.runs_in_process and not model.can_shift_context:
                lines.append(
                    Content.styled(
                        "This model's cache cannot shift: each drop evaluates the prompt again",
                        "$warning",
                    )
                )
        result = thread.last_result
        if result is not None:
            reply = f"Last reply {result.n_generated} tokens"
            report = result.prompt
            prompt = f"Prompt {report.evaluated} evaluated, {report.reused} reused"
            if report.shifted:
                prompt += f" ({report.shifted} shifted)"
            if self._show_timings:
                reply += f" · {result.tokens_per_second:.1f} tok/s"
                prompt += f" · {report.seconds:.2f} s"
            lines += [reply, prompt, f"Stopped by {result.stop_reason.replace('_', ' ')}"]
        switch = thread.last_switch
        if switch is not None:  # only the tokens after the paths' common prefix
            line = f"Last switch {switch.evaluated} evaluated, {switch.reused} reused"
            lines.append(line + (f" · {switch.seconds:.2f} s" if self._show_timings else ""))
        choice = thread.format_choice
        lines += ["", Content.styled("Format", "bold"), choice.summary]
        if choice.warning:
            lines.append(Content.styled(visible(choice.warning), "$warning"))
        lines += [
            "",
            Content.styled("Model", "bold"),
            *model_facts(model),
            "",
            Content.styled("Sampler", "bold"),
            sampler_summary(thread.sampler),
        ]
        # The plain lines quote the file name, GGUF metadata, a server's replies and preset
        # values: shown through visible, as Content (never markup).
        self.update(
            Content("\n").join(Content(visible(x)) if isinstance(x, str) else x for x in lines)
        )
