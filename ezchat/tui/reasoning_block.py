"""``ReasoningBlock``: a reply's reasoning above its answer, dim and collapsed to one line.

While the model thinks, the line says "thinking… N tokens" and the text streams in (shown when
the block is expanded); afterwards it says how long the reasoning is. The message's
``message.reasoning`` key (r by default) expands and collapses it. The text came from the
model, so it is shown through ``visible`` and as ``Content``, never read as markup.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from ..safetext import VisibleStream, visible


class ReasoningBlock(Static):
    DEFAULT_CSS = """
    ReasoningBlock {
        color: $text-muted;
        text-style: dim;
        padding: 0 0 0 1;
        border-left: vkey $foreground 20%;
    }
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(classes="reasoning")
        self.text = text
        self.expanded = False
        self.thinking = False
        self.tokens = 0
        self._visible_stream = VisibleStream()
        self._shown = visible(text)
        self.display = bool(text.strip())

    def on_mount(self) -> None:
        self._redraw()

    @property
    def headline(self) -> str:
        if self.thinking:
            return f"thinking… {self.tokens} tokens"
        lines = len(self.text.strip().splitlines())
        return f"Reasoning ({lines} line{'s' if lines != 1 else ''})"

    def _redraw(self) -> None:
        marker = "▾" if self.expanded else "▸"
        line = f"{marker} {self.headline}"
        if self.expanded and self._shown.strip():
            line += "\n" + self._shown.strip("\n")
        self.update(Content(line))

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._redraw()

    def set_text(self, text: str) -> None:
        self.text = text
        self.thinking = False
        self._visible_stream = VisibleStream()
        self._shown = visible(text)
        self.display = bool(text.strip())
        self._redraw()

    def stream(self, text: str, thinking: bool, tokens: int) -> None:
        """Append streamed reasoning; ``thinking``: the model is still inside the block."""
        self.text += text
        self._shown += self._visible_stream.push(text)
        self.thinking = thinking
        self.tokens = tokens
        self.display = self.display or thinking or bool(self.text.strip())
        self._redraw()
