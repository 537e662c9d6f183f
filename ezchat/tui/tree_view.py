"""``TreeView``: a chat tree drawn one line per node, with a cursor, the active path
highlighted, search hits marked and subtrees that collapse.

It draws only the lines on screen (Textual's line API), so a tree of thousands of nodes opens
as fast as a small one: opening costs one walk to build the rows (ezchat/tui/tree_rows.py).
The keys are the tree screen's (ezchat/tui/tree_screen.py); this widget binds none itself, so
the arrows are not taken by its scrolling.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..chat.tree import Node, Tree
from ..safetext import visible
from .tree_rows import Row, percent, preview, tree_rows

ROLE_CELLS = 7
MADE_CELLS = 18


class TreeView(ScrollView, can_focus=True, inherit_bindings=False):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tree-view--cursor",
        "tree-view--active",
        "tree-view--hit",
        "tree-view--dim",
        "tree-view--mark",
    }

    DEFAULT_CSS = """
    TreeView {
        overflow-x: hidden;
        & > .tree-view--cursor { background: $block-cursor-blurred-background; }
        &:focus > .tree-view--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .tree-view--active { color: $text-accent; text-style: bold; }
        & > .tree-view--hit { background: $warning 30%; }
        & > .tree-view--dim { color: $text-muted; }
        & > .tree-view--mark { color: $warning; }
    }
    """

    class Moved(Message):
        """The cursor is on another node (or the rows changed under it)."""

    def __init__(self, tree: Tree, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chat_tree = tree
        self.collapsed: set[int] = set()
        self.hits: set[int] = set()  # node ids that a search found
        self.rows: list[Row] = []
        self._row_of: dict[int, int] = {}
        self._active: set[int] = set()
        self.cursor = 0

    # --- the rows ------------------------------------------------------------------------------

    def rebuild(self, keep: Node | None = None) -> None:
        """Build the rows again (after a collapse, a delete or a switch), with the cursor on
        ``keep`` (default: the node it is on, or the nearest row where that one is gone)."""
        keep = keep or self.cursor_node
        self.collapsed &= self.chat_tree.nodes.keys()
        self.hits &= self.chat_tree.nodes.keys()
        self.rows = tree_rows(self.chat_tree, self.collapsed)
        self._row_of = {row.node.id: place for place, row in enumerate(self.rows)}
        self._active = {node.id for node in self.chat_tree.active_path}
        self.virtual_size = Size(1, len(self.rows))
        if keep is not None and keep.id in self._row_of:
            self.cursor = self._row_of[keep.id]
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self._cursor_moved()
        self.refresh()

    @property
    def cursor_node(self) -> Node | None:
        return self.rows[self.cursor].node if 0 <= self.cursor < len(self.rows) else None

    def row_of(self, node: Node) -> int | None:
        return self._row_of.get(node.id)

    # --- moving --------------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(row, len(self.rows) - 1))
        self._cursor_moved()
        self.refresh()

    def go_to(self, node: Node) -> None:
        """Put the cursor on ``node``, expanding whatever collapsed node hides it."""
        hiding = {above.id for above in self.chat_tree.path_to(node)[:-1]} & self.collapsed
        if hiding:
            self.collapsed -= hiding
            self.rebuild(keep=node)
        elif (row := self.row_of(node)) is not None:
            self.move_cursor(row)

    def toggle(self, node: Node, collapsed: bool) -> None:
        if collapsed:
            self.collapsed.add(node.id)
        else:
            self.collapsed.discard(node.id)
        self.rebuild(keep=node)

    def _cursor_moved(self) -> None:
        self.scroll_to_cursor()
        self.post_message(self.Moved())

    def scroll_to_cursor(self, center: bool = False) -> None:
        height = self.scrollable_content_region.height
        if height <= 0:
            return
        top = round(self.scroll_y)
        if center:
            top = self.cursor - height // 2
        elif self.cursor < top:
            top = self.cursor
        elif self.cursor >= top + height:
            top = self.cursor - height + 1
        self.scroll_to(y=max(0, top), animate=False, force=True)

    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self.move_cursor(offset.y + round(self.scroll_y))

    def on_resize(self) -> None:
        self.scroll_to_cursor()

    # --- drawing -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        place = y + round(self.scroll_y)
        base = self.rich_style
        if place >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[place]
        node = row.node
        style = base
        if node.id in self.hits:
            style += self.get_component_rich_style("tree-view--hit", partial=True)
        if node.id in self._active:
            style += self.get_component_rich_style("tree-view--active", partial=True)
        if place == self.cursor:
            style += self.get_component_rich_style("tree-view--cursor", partial=True)
        text = self._row_text(row, node.id in self._active)
        text.stylize_before(style)
        text.truncate(width, overflow="ellipsis")
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.extend_cell_length(width, style)

    def _row_text(self, row: Row, active: bool) -> Text:
        node = row.node
        dim = self.get_component_rich_style("tree-view--dim", partial=True)
        mark = self.get_component_rich_style("tree-view--mark", partial=True)
        text = Text(no_wrap=True, end="")
        text.append(row.guides, dim)
        text.append("●" if active else " ")
        text.append("★" if node.bookmarked else " ", mark)
        text.append("▸" if row.hidden else " ")
        text.append(f"{node.id:>4} ", dim)
        text.append(visible(node.role[: ROLE_CELLS - 1]).ljust(ROLE_CELLS))
        text.append(node.origin.describe().ljust(MADE_CELLS), dim)
        text.append(percent(node).rjust(4) + "  ")
        text.append(preview(node))
        if row.hidden:
            text.append(f"  (+{row.hidden} hidden)", dim)
        return text
