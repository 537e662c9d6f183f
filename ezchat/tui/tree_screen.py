"""The tree screen: a chat's whole tree, one line per node, to look at, search, bookmark,
prune, and pick the path the conversation follows.

It dismisses with the node whose path should become active (Enter), or None (Escape); the
caller switches, since the conversation view and the model's cache are its business.
Bookmarks and deletes happen while the screen is open, through a ``TreeKeeper``: the chat's
own, which saves them, or ``MemoryKeeper``, which changes the tree alone. Its keys are the
"tree" rows of ezchat/tui/actions.py.
"""

from __future__ import annotations

from typing import Protocol

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Input, Static

from ..chat.tree import Node, Tree
from ..errors import EzChatError
from .actions import TREE, bindings
from .dialogs import ConfirmScreen, plain
from .footer import KeyFooter
from .tree_rows import percent, preview
from .tree_view import TreeView


class TreeKeeper(Protocol):
    """Where the screen's changes to the tree go."""

    def set_bookmark(self, node: Node, bookmarked: bool) -> None: ...

    def delete_subtree(self, node: Node) -> list[Node]:
        """Remove ``node`` and everything under it from the tree; returns what was removed."""
        ...


class MemoryKeeper:
    """Changes the tree itself; the chat screen's ChatLog saves the tree when the screen
    closes (ChatLog.sync)."""

    def __init__(self, tree: Tree) -> None:
        self.chat_tree = tree

    def set_bookmark(self, node: Node, bookmarked: bool) -> None:
        node.bookmarked = bookmarked

    def delete_subtree(self, node: Node) -> list[Node]:
        return self.chat_tree.delete(node)


class TreeScreen(Screen[Node | None]):
    BINDINGS = bindings(TREE)

    DEFAULT_CSS = """
    TreeScreen {
        #tree-title { background: $panel; color: $text; padding: 0 1; }
        #tree-view { height: 1fr; }
        #tree-detail { color: $text-muted; padding: 0 1; height: 1; }
        #tree-search { display: none; }
        #tree-search.-open { display: block; }
    }
    """

    def __init__(self, tree: Tree, keeper: TreeKeeper | None = None) -> None:
        super().__init__()
        self.chat_tree = tree
        self.keeper = keeper or MemoryKeeper(tree)
        self.deleted: list[Node] = []  # every node deleted while the screen was open
        self.search_text = ""
        self.search_hits: list[Node] = []

    def compose(self) -> ComposeResult:
        yield Static(id="tree-title")
        yield TreeView(self.chat_tree, id="tree-view")
        yield Static(id="tree-detail")
        yield Input(placeholder="search the tree (Enter searches, Escape closes)", id="tree-search")
        yield KeyFooter()

    def on_mount(self) -> None:
        view = self.view
        view.rebuild(
            keep=self.chat_tree.active if self.chat_tree.active is not self.chat_tree.root else None
        )
        view.focus()
        self.call_after_refresh(view.scroll_to_cursor, True)
        self._show_title()

    @property
    def view(self) -> TreeView:
        return self.query_one(TreeView)

    @property
    def search_box(self) -> Input:
        return self.query_one("#tree-search", Input)

    # --- what the screen says ------------------------------------------------------------------

    def _show_title(self) -> None:
        count = len(self.chat_tree)
        title = f"Chat tree · {count} node{'' if count == 1 else 's'} · ● the active path"
        if not count:
            title += " · no messages yet"
        self.query_one("#tree-title", Static).update(title)

    def on_tree_view_moved(self) -> None:
        node = self.view.cursor_node
        detail = self.query_one("#tree-detail", Static)
        if node is None:
            detail.update("")
            return
        place, of = node.sibling_index()
        parts = [f"node {node.id}", node.origin.describe()]
        if of > 1:
            parts.append(f"alternative {place + 1} of {of}")
        if node.token_info:
            parts.append(f"mean probability {percent(node)} over {len(node.token_info)} tokens")
        if node.bookmarked:
            parts.append("★ bookmarked")
        if self.search_hits and node in self.search_hits:
            hit = self.search_hits.index(node) + 1
            parts.append(f"hit {hit} of {len(self.search_hits)} for “{self.search_text}”")
        detail.update(plain(" · ".join(parts)))

    # --- moving --------------------------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        self.view.move_cursor(self.view.cursor + step)

    def action_page(self, step: int) -> None:
        self.view.move_cursor(self.view.cursor + step * self.view.page)

    def action_edge(self, step: int) -> None:
        self.view.move_cursor(0 if step < 0 else len(self.view.rows) - 1)

    def action_parent(self) -> None:
        view, node = self.view, self.view.cursor_node
        if node is None:
            return
        if node.children and node.id not in view.collapsed:
            view.toggle(node, collapsed=True)
        elif node.parent is not None and node.parent is not self.chat_tree.root:
            view.go_to(node.parent)

    def action_child(self) -> None:
        view, node = self.view, self.view.cursor_node
        if node is None or not node.children:
            return
        if node.id in view.collapsed:
            view.toggle(node, collapsed=False)
        else:
            view.go_to(node.children[0])

    def action_next_bookmark(self) -> None:
        self._jump(self.chat_tree.bookmarks(), 1, "No node is bookmarked; b bookmarks one.")

    # --- acting on a node ----------------------------------------------------------------------

    def action_choose(self) -> None:
        node = self.view.cursor_node
        if node is not None:
            self.dismiss(node)

    def action_close(self) -> None:
        if self.search_box.has_focus:
            self._close_search()
            return
        self.dismiss(None)

    def action_bookmark(self) -> None:
        node = self.view.cursor_node
        if node is None:
            return
        try:
            self.keeper.set_bookmark(node, not node.bookmarked)
        except EzChatError as error:
            self.notify(str(error), severity="error")
        self.view.refresh()
        self.on_tree_view_moved()

    def action_delete(self) -> None:
        node = self.view.cursor_node
        if node is None:
            return
        under = sum(1 for _ in self.chat_tree.walk(node))
        what = f"node {node.id} ({node.role}: “{preview(node, 40)}”)"
        question = f"Delete {what} and the {under} under it?" if under else f"Delete {what}?"

        def done(yes: bool | None) -> None:
            if yes:
                self._delete(node)

        self.app.push_screen(ConfirmScreen(question), done)

    def _delete(self, node: Node) -> None:
        # the cursor goes to the next sibling, else the one before, else the parent
        after = self.chat_tree.sibling(node, 1) or self.chat_tree.sibling(node, -1) or node.parent
        try:
            removed = self.keeper.delete_subtree(node)
        except EzChatError as error:
            self.notify(str(error), severity="error")
            return
        self.deleted.extend(removed)
        self.search_hits = [hit for hit in self.search_hits if hit.id in self.chat_tree.nodes]
        self.view.rebuild(keep=after if after is not self.chat_tree.root else None)
        self._show_title()

    # --- searching -----------------------------------------------------------------------------

    def action_search(self) -> None:
        box = self.search_box
        box.add_class("-open")
        box.value = self.search_text
        box.focus()

    def _close_search(self) -> None:
        self.search_box.remove_class("-open")
        self.view.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_search()
        self.search_text = event.value.strip()
        self.search_hits = self.chat_tree.search(self.search_text) if self.search_text else []
        self.view.hits = {hit.id for hit in self.search_hits}
        self.view.refresh()
        if not self.search_text:
            return
        if not self.search_hits:
            self.notify(f"No node holds “{self.search_text}”.", severity="warning")
            return
        self._jump(self.search_hits, 1, "", from_here=True)

    def action_hit(self, step: int) -> None:
        self._jump(self.search_hits, step, "Search first: / opens the search box.")

    def _jump(self, targets: list[Node], step: int, nothing: str, from_here: bool = False) -> None:
        """Go to the next (step 1) or previous (-1) of ``targets`` after the cursor in walk
        order, round the end; ``from_here`` counts the node under the cursor as next."""
        if not targets:
            self.notify(nothing)
            return
        order = {node.id: place for place, node in enumerate(self.chat_tree.walk())}
        current = self.view.cursor_node
        here = order.get(current.id, -1) if current is not None else -1
        places = [order[target.id] for target in targets]
        if step > 0:
            later = [i for i, p in enumerate(places) if p > here or (from_here and p == here)]
            choice = later[0] if later else 0
        else:
            earlier = [i for i, p in enumerate(places) if p < here]
            choice = earlier[-1] if earlier else len(targets) - 1
        self.view.go_to(targets[choice])
