"""``PlainBody``: a message's text as plain lines, drawn only where it is on screen.

A message longer than the app's Markdown limit (``max_markdown_chars``) is shown with this
widget instead of Textual's Markdown, which builds widgets for the whole text at once: a reply
holding a 10,000-row table took minutes and gigabytes to open that way. Here the text is split
into lines and wrapped to the width once (a pass over the text, no widgets), and Textual's line
API asks ``render_line`` only for the rows the screen shows, so opening, scrolling and typing
cost the same whatever the message's length.

The text it gets has already been through ``visible`` (no terminal controls); it is drawn as
segments of plain text, never read as markup.
"""

from __future__ import annotations

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from textual.cache import LRUCache
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

TAB_SIZE = 4


def wrap_line(line: str, width: int) -> list[str]:
    """``line`` cut into rows of at most ``width`` cells, at spaces where it can be (a word
    longer than a row is cut inside); an empty line is one empty row."""
    if cell_len(line) <= width:
        return [line]
    rows: list[str] = []
    row = ""
    row_cells = 0
    for word in line.split(" "):
        word_cells = cell_len(word)
        gap = 1 if row else 0
        if row_cells + gap + word_cells <= width:
            row = f"{row} {word}" if gap else word
            row_cells += gap + word_cells
            continue
        if row:
            rows.append(row)
        if word_cells <= width:
            row, row_cells = word, word_cells
            continue
        *whole, row = chop_cells(word, width)
        rows.extend(whole)
        row_cells = cell_len(row)
    rows.append(row)
    return rows


class PlainBody(Widget):
    """Plain text of any length, wrapped to the widget's width and drawn row by row."""

    DEFAULT_CSS = """
    PlainBody {
        height: auto;
    }
    """

    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._lines: list[str] = []
        self._rows: list[str] = []
        self._rows_width = 0  # the width _rows are wrapped to (0: not wrapped yet)
        self._strips: LRUCache[int, Strip] = LRUCache(1024)
        # every row asked for since the text or width last changed: the tests check that
        # only what is on screen is drawn
        self.rows_drawn: set[int] = set()
        self.update(text)

    @property
    def text(self) -> str:
        return "\n".join(self._lines)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def row(self, y: int) -> str:
        """The text of row ``y`` as wrapped at the current width."""
        return self._rows[y]

    def update(self, text: str) -> None:
        self._lines = text.expandtabs(TAB_SIZE).split("\n")
        self._forget_rows()

    def append(self, text: str) -> None:
        """Add streamed text: only the last line and the new ones are wrapped again."""
        if not text:
            return
        head, *more = text.expandtabs(TAB_SIZE).split("\n")
        last = len(self._lines) - 1
        if self._rows_width:
            # the rows of every line before the last stay as they are
            del self._rows[len(self._rows) - len(wrap_line(self._lines[last], self._rows_width)) :]
        self._lines[last] += head
        self._lines.extend(more)
        if self._rows_width:
            for line in self._lines[last:]:
                self._rows.extend(wrap_line(line, self._rows_width))
            self._strips.clear()
            self.rows_drawn.clear()
        self.refresh(layout=True)

    def _forget_rows(self) -> None:
        self._rows = []
        self._rows_width = 0
        self._strips.clear()
        self.rows_drawn.clear()
        self.refresh(layout=True)

    def _wrap(self, width: int) -> None:
        if width == self._rows_width or width <= 0:
            return
        rows: list[str] = []
        for line in self._lines:
            rows.extend(wrap_line(line, width))
        self._rows = rows
        self._rows_width = width
        self._strips.clear()
        self.rows_drawn.clear()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._wrap(width)
        return len(self._rows)

    def render_line(self, y: int) -> Strip:
        width = self.content_region.width
        self._wrap(width)
        style = self.rich_style
        if not 0 <= y < len(self._rows):
            return Strip.blank(width, style)
        self.rows_drawn.add(y)
        strip = self._strips.get(y)
        if strip is None:
            row = self._rows[y]
            strip = Strip([Segment(row, style)], cell_len(row)).extend_cell_length(width, style)
            self._strips[y] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
