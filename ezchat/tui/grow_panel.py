"""The grow panel: the N replies a grow makes, listed as they stream, one to pick.

It reads the texts the growth gathers (``GrowingReplies.texts``, appended by the worker) on a
timer, so the UI redraws at its own pace whatever the model's. While growing, Escape stops
all N (each keeps its part); once they are recorded, Enter or a reply's number picks it and
Escape closes with reply 1, the one the Thread made active, as the chat's.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..safetext import visible
from .actions import GROW, bindings

# a long reply shows its end, where it is growing; the whole text is in the tree
PREVIEW_CHARS = 600
REDRAW_SECONDS = 0.1


class GrowPanel(ModalScreen[int | None]):
    """Dismissed with the index (0-based) of the reply picked, or None (reply 1 stays)."""

    BINDINGS = bindings(GROW)
    DEFAULT_CSS = """
    GrowPanel { align: center middle; }
    GrowPanel #grow-box {
        width: 90%; height: 80%; border: round $accent; background: $surface; padding: 0 1;
    }
    GrowPanel #grow-title { text-style: bold; }
    GrowPanel .grow-reply { margin: 1 0 0 0; padding: 0 1; }
    GrowPanel .grow-reply.-highlight { background: $accent 30%; }
    """

    def __init__(self, n: int, texts: Callable[[], list[str]], stop: Callable[[], None]) -> None:
        super().__init__(id="grow-panel")
        self.n = n
        self._texts = texts
        self._stop = stop
        self.growing = True
        self.highlighted = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="grow-box"):
            yield Static(self._title(), id="grow-title", markup=False)
            with VerticalScroll(id="grow-replies"):
                for i in range(self.n):
                    yield Static(self._row(i, ""), classes="grow-reply", markup=False)

    def on_mount(self) -> None:
        self._highlight(0)
        self._timer = self.set_interval(REDRAW_SECONDS, self._redraw)

    @property
    def rows(self) -> list[Static]:
        return list(self.query(".grow-reply").results(Static))

    def _title(self) -> str:
        if self.growing:
            return f"Growing {self.n} replies at once · Escape stops all of them"
        return f"{self.n} replies · Enter or 1-{min(self.n, 9)} picks one · Escape keeps reply 1"

    def _row(self, index: int, text: str) -> str:
        shown = visible(text)
        if len(shown) > PREVIEW_CHARS:
            shown = "…" + shown[-PREVIEW_CHARS:]
        return f"{index + 1}) {shown}"

    def _redraw(self, texts: list[str] | None = None) -> None:
        texts = list(self._texts()) if texts is None else texts
        for i, row in enumerate(self.rows):
            row.update(self._row(i, texts[i] if i < len(texts) else ""))

    def finished(self, texts: list[str]) -> None:
        """The N replies are recorded (``texts`` as recorded); now one can be picked."""
        self.growing = False
        self._timer.stop()
        self._redraw(texts)
        self.query_one("#grow-title", Static).update(self._title())

    def _highlight(self, index: int) -> None:
        rows = self.rows
        self.highlighted = max(0, min(index, len(rows) - 1))
        for i, row in enumerate(rows):
            row.set_class(i == self.highlighted, "-highlight")
        rows[self.highlighted].scroll_visible(animate=False)

    def action_cursor(self, step: int) -> None:
        self._highlight(self.highlighted + step)

    def action_pick(self) -> None:
        self._choose(self.highlighted)

    def action_stop_or_close(self) -> None:
        if self.growing:
            self._stop()
        else:
            self.dismiss(None)

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character.isdigit() and 1 <= int(event.character) <= self.n:
            event.stop()
            self._highlight(int(event.character) - 1)
            self._choose(self.highlighted)

    def _choose(self, index: int) -> None:
        if self.growing:
            self.notify("The replies are still growing; Escape stops them, then pick one.")
            return
        self.dismiss(index)
