"""The screen shown while the model loads (in a worker), or why it could not load."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import ProgressBar, Static

from ..safetext import visible
from .footer import KeyFooter


class LoadingScreen(Screen):
    """Shows how much of the model llama.cpp has read, refreshed on a timer: the loading
    thread only records the latest fraction (``loaded``), it never touches a widget."""

    BINDINGS = [Binding("q", "app.quit", "Quit", id="loading.quit")]

    def __init__(self, model_path: str | Path | None, server: str | None = None) -> None:
        super().__init__()
        self.model_path = model_path
        self.server = server
        self.failed = False
        self.loaded = 0.0
        self._started = time.perf_counter()

    def compose(self) -> ComposeResult:
        name = Path(str(self.model_path)).name if self.model_path else "the model"
        with Center(), Vertical(id="loading-box"):
            # the file name, and the error below that quotes it, are plain text
            title = f"Connecting to {self.server}…" if self.server else f"Loading {name}…"
            yield Static(Content(visible(title)), id="loading-title")
            yield ProgressBar(total=100, show_eta=False, id="loading-progress")
            yield Static("", id="loading-status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self._tick)

    def _tick(self) -> None:
        elapsed = time.perf_counter() - self._started
        self.query_one(ProgressBar).update(progress=round(self.loaded * 100, 1))
        self.query_one("#loading-status", Static).update(f"{elapsed:.1f} s")

    def show_error(self, message: str) -> None:
        """The load failed: say why and what to do; the app stays open."""
        self.failed = True
        self._timer.stop()
        self.query_one(ProgressBar).display = False
        self.query_one("#loading-title", Static).update("The model could not be loaded")
        status = self.query_one("#loading-status", Static)
        status.add_class("-error")
        status.update(
            Content(
                visible(message)
                + "\n\nStart ezchat with another model (ezchat MODEL.gguf) or set one with "
                "`ezchat config set model PATH`.  Press q to quit."
            )
        )
