"""A chat's tree of messages (ezchat.chat.tree) in the rows of ``nodes``, mixed into ChatStore.

Every node is written as it appears (``add_node``), a streaming reply's text as it grows
(``update_node``), and the end of the path in use on every switch (``set_active_leaf``), so a
chat reopens as the same tree with the same active path (``load_tree``). Node ids are the
Tree's own, numbered per chat.
"""

from __future__ import annotations

import sqlite3
import time

from ..chat.roles import normalize_role
from ..chat.tree import Made, Node, Origin, TokenInfo, Tree
from ..errors import StoreError
from .connection import StoreFile
from .node_reading import node_from_row
from .schema import DEFAULT_TITLE, packed_or_none
from .tokeninfo import pack_token_info

TITLE_LENGTH = 40

_COLUMNS = (
    "id, parent, chosen, role, content, reasoning, tokens, token_info, origin, bookmarked, created"
)


def title_from_text(text: str, length: int = TITLE_LENGTH) -> str:
    """A chat title from a message: its first ``length`` characters on one line, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= length:
        return line
    cut = line[:length]
    space = cut.rfind(" ")
    if space > length // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


def default_origin(role: str) -> Origin:
    """How a message added at the end of a chat was made: a bot's is a reply."""
    return Origin(Made.REPLY if role == "bot" else Made.MESSAGE)


def packed_info_or_none(infos: list[TokenInfo] | None) -> bytes | None:
    return pack_token_info(infos) if infos is not None else None


class NodeRows(StoreFile):
    """The chat trees of a StoreFile (mixed into ChatStore)."""

    @staticmethod
    def _role(role: str) -> str:
        try:
            return normalize_role(role)
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    def _require_node(self, conn: sqlite3.Connection, chat_id: int, node_id: int) -> tuple:
        """(parent, role) of a saved node."""
        row = conn.execute(
            "SELECT parent, role FROM nodes WHERE chat_id = ? AND id = ?", (chat_id, node_id)
        ).fetchone()
        if row is None:
            raise StoreError(
                f"chat {chat_id} has no saved message {node_id}; it may have been deleted"
            )
        return row

    def _maybe_title(self, conn: sqlite3.Connection, chat_id: int, role: str, text: str) -> None:
        """A chat still called "New chat" takes its title from its first user message."""
        if role != "user" or not text.strip():
            return
        title = conn.execute("SELECT title FROM chats WHERE id = ?", (chat_id,)).fetchone()[0]
        if title != DEFAULT_TITLE:
            return
        users = conn.execute(
            "SELECT COUNT(*) FROM nodes WHERE chat_id = ? AND role = 'user'", (chat_id,)
        ).fetchone()[0]
        if users == 1:
            conn.execute(
                "UPDATE chats SET title = ? WHERE id = ?", (title_from_text(text), chat_id)
            )

    @staticmethod
    def _next_id(conn: sqlite3.Connection, chat_id: int) -> int:
        return int(
            conn.execute(
                "SELECT COALESCE(MAX(id), 0) + 1 FROM nodes WHERE chat_id = ?", (chat_id,)
            ).fetchone()[0]
        )

    # --- writing -------------------------------------------------------------------------------

    def add_node(
        self,
        chat_id: int,
        parent: int,
        role: str,
        content: str,
        *,
        origin: Origin | None = None,
        reasoning: str = "",
        tokens: list[int] | None = None,
        token_info: list[TokenInfo] | None = None,
        node_id: int | None = None,
        bookmarked: bool = False,
        created: float | None = None,
        activate: bool = True,
    ) -> int:
        """Save a new node under ``parent`` (0: a top-level message) and return its id: the
        Tree's ``node_id`` when given, else the next free one. ``activate`` makes it the end
        of the path in use, as ``Tree.add`` does."""
        role = self._role(role)
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            if parent:
                self._require_node(conn, chat_id, parent)
            if node_id is None:
                node_id = self._next_id(conn, chat_id)
            try:
                self._insert_node(
                    conn,
                    chat_id,
                    node_id,
                    parent,
                    role,
                    content,
                    origin or default_origin(role),
                    reasoning,
                    tokens,
                    token_info,
                    bookmarked,
                    created,
                )
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"chat {chat_id} already has a message {node_id}; reopen the chat"
                ) from None
            if activate:
                self._activate(conn, chat_id, node_id)
            else:  # a parent's first child is the one followed until another is picked
                conn.execute(
                    "UPDATE nodes SET chosen = ? WHERE chat_id = ? AND id = ? AND chosen = 0",
                    (node_id, chat_id, parent),
                )
            self._maybe_title(conn, chat_id, role, content)
            self._touch(conn, chat_id)
            return int(node_id)

    def save_node(self, chat_id: int, node: Node, *, activate: bool = True) -> int:
        """Save a node of a live Tree (its id, parent, message, origin and tokens)."""
        message = node.message or {}
        return self.add_node(
            chat_id,
            node.parent.id if node.parent is not None else 0,
            node.role,
            node.content,
            origin=node.origin,
            reasoning=message.get("reasoning", ""),
            tokens=node.tokens,
            token_info=node.token_info,
            node_id=node.id,
            bookmarked=node.bookmarked,
            created=node.created,
            activate=activate,
        )

    @staticmethod
    def _insert_node(
        conn: sqlite3.Connection,
        chat_id: int,
        node_id: int,
        parent: int,
        role: str,
        content: str,
        origin: Origin,
        reasoning: str = "",
        tokens: list[int] | None = None,
        token_info: list[TokenInfo] | None = None,
        bookmarked: bool = False,
        created: float | None = None,
        chosen: int = 0,
    ) -> None:
        conn.execute(
            f"INSERT INTO nodes (chat_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                node_id,
                parent,
                chosen,
                role,
                content,
                reasoning,
                packed_or_none(tokens),
                packed_info_or_none(token_info),
                origin.encode(),
                int(bookmarked),
                created if created is not None else time.time(),
            ),
        )

    def update_node(
        self,
        chat_id: int,
        node_id: int,
        content: str,
        *,
        reasoning: str | None = None,
        tokens: list[int] | None = None,
        token_info: list[TokenInfo] | None = None,
    ) -> None:
        """A node's text as it is now: a streaming reply flushed so far, or its final text
        with the tokens it was generated as (``tokens`` and ``token_info`` replace the saved
        ones, None: not known yet); ``reasoning`` None keeps the saved reasoning."""
        with self._writing() as conn:
            self._require_node(conn, chat_id, node_id)
            conn.execute(
                "UPDATE nodes SET content = ?, reasoning = COALESCE(?, reasoning), tokens = ?, "
                "token_info = ? WHERE chat_id = ? AND id = ?",
                (
                    content,
                    reasoning,
                    packed_or_none(tokens),
                    packed_info_or_none(token_info),
                    chat_id,
                    node_id,
                ),
            )
            self._touch(conn, chat_id)

    def set_tokens(self, chat_id: int, node_id: int, tokens: list[int] | None) -> None:
        """Record the token ids of a reply without changing its text or the chat's place in
        the list (the chat was saved before its ids were known)."""
        with self._writing() as conn:
            self._require_node(conn, chat_id, node_id)
            conn.execute(
                "UPDATE nodes SET tokens = ? WHERE chat_id = ? AND id = ?",
                (packed_or_none(tokens), chat_id, node_id),
            )

    def set_active_leaf(self, chat_id: int, node_id: int) -> None:
        """Make ``node_id`` the end of the path in use (0: the empty chat), as
        ``Tree.truncate_to`` does: every node above it remembers the child taken."""
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            if node_id:
                self._require_node(conn, chat_id, node_id)
            self._activate(conn, chat_id, node_id)
            self._touch(conn, chat_id)

    def switch_to(self, chat_id: int, node_id: int) -> Tree:
        """Make ``node_id``'s path the one in use, on down its chosen children as
        ``Tree.switch_to`` goes; returns the chat's tree as it is now."""
        with self._writing() as conn:
            self._require_node(conn, chat_id, node_id)
            tree = self._tree(conn, chat_id, [])
            node = tree.nodes.get(node_id)
            if node is not None:
                tree.switch_to(node)
                self._activate(conn, chat_id, tree.active.id)
                self._touch(conn, chat_id)
            return tree

    @staticmethod
    def _activate(conn: sqlite3.Connection, chat_id: int, node_id: int) -> None:
        # UNION (not UNION ALL) ends the walk up even in a damaged file whose parents loop
        conn.execute(
            "WITH RECURSIVE path(id, parent) AS ("
            " SELECT id, parent FROM nodes WHERE chat_id = ? AND id = ?"
            " UNION SELECT n.id, n.parent FROM nodes n JOIN path p"
            " ON n.chat_id = ? AND n.id = p.parent) "
            "UPDATE nodes SET chosen = (SELECT p.id FROM path p WHERE p.parent = nodes.id) "
            "WHERE chat_id = ? AND id IN (SELECT parent FROM path)",
            (chat_id, node_id, chat_id, chat_id),
        )
        conn.execute("UPDATE chats SET active_leaf = ? WHERE id = ?", (node_id, chat_id))

    def relink(self, chat_id: int, node_id: int, parent: int, chosen: int) -> None:
        """Record a node's new place: the parent it hangs under and the child it follows (a
        message put before it, or taken out above it)."""
        with self._writing() as conn:
            self._require_node(conn, chat_id, node_id)
            conn.execute(
                "UPDATE nodes SET parent = ?, chosen = ? WHERE chat_id = ? AND id = ?",
                (parent, chosen, chat_id, node_id),
            )

    def forget_nodes(self, chat_id: int, node_ids: list[int]) -> None:
        """Delete these rows alone (nodes a live Tree no longer holds; what hung under them
        has been relinked already)."""
        with self._writing() as conn:
            conn.executemany(
                "DELETE FROM nodes WHERE chat_id = ? AND id = ?", [(chat_id, i) for i in node_ids]
            )
            self._touch(conn, chat_id)

    def set_bookmark(self, chat_id: int, node_id: int, bookmarked: bool = True) -> None:
        with self._writing() as conn:
            self._require_node(conn, chat_id, node_id)
            conn.execute(
                "UPDATE nodes SET bookmarked = ? WHERE chat_id = ? AND id = ?",
                (int(bookmarked), chat_id, node_id),
            )

    def delete_subtree(self, chat_id: int, node_id: int) -> list[int]:
        """Delete a node and everything under it; returns the ids removed. When the path in
        use ran through it, it moves as ``Tree.delete`` moves it."""
        with self._writing() as conn:
            self._require_node(conn, chat_id, node_id)
            tree = self._tree(conn, chat_id, [])
            node = tree.nodes.get(node_id)
            if node is None:  # under a damaged node: not in the tree, so only itself
                removed = [node_id]
            else:
                parent = node.parent
                removed = [gone.id for gone in tree.delete(node)]
                chosen = parent.chosen.id if parent.chosen is not None else 0
                conn.execute(
                    "UPDATE nodes SET chosen = ? WHERE chat_id = ? AND id = ?",
                    (chosen, chat_id, parent.id),
                )
            conn.executemany(
                "DELETE FROM nodes WHERE chat_id = ? AND id = ?", [(chat_id, i) for i in removed]
            )
            if node is not None:
                self._activate(conn, chat_id, tree.active.id)
            self._touch(conn, chat_id)
            return removed

    # --- reading -------------------------------------------------------------------------------

    def load_tree(self, chat_id: int, notes: list[str] | None = None) -> Tree:
        """The chat as a Tree, its active path as saved. A damaged row (a role this ezchat
        does not know, a parent that is gone) is left out with what hangs under it, and a
        damaged token-probability blob reads as unknown; each is one line in ``notes``."""
        with self._reading() as conn:
            self._require_chat(conn, chat_id)
            return self._tree(conn, chat_id, notes if notes is not None else [])

    def _tree(self, conn: sqlite3.Connection, chat_id: int, notes: list[str]) -> Tree:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM nodes WHERE chat_id = ? ORDER BY id", (chat_id,)
        ).fetchall()
        active_id = conn.execute(
            "SELECT active_leaf FROM chats WHERE id = ?", (chat_id,)
        ).fetchone()[0]
        tree = Tree()
        chosen: dict[int, int] = {}
        children: dict[int, list[tuple]] = {}
        for row in rows:
            children.setdefault(row[1], []).append(row)
        # from the top down, so a node moved under a newer one (a message inserted before
        # it) still finds its parent; siblings keep the order of their ids
        waiting = [0]
        while waiting:
            for row in children.pop(waiting.pop(), []):
                node = node_from_row(tree, chat_id, row, notes)
                if node is not None:
                    waiting.append(node.id)
                    if row[2]:
                        chosen[node.id] = row[2]
        saved = {row[0] for row in rows}
        for parent_id in sorted(children.keys() - saved):  # hanging under no node: damaged
            row = children[parent_id][0]
            notes.append(
                f"chat {chat_id}: saved message {row[0]} is damaged (its parent {parent_id} is "
                "missing); it and the messages under it are left out"
            )
        for node_id, child_id in chosen.items():
            child = tree.nodes.get(child_id)
            if child is not None and child.parent is tree.nodes[node_id]:
                tree.nodes[node_id].chosen = child
        active = tree.nodes.get(active_id)
        if active is None and active_id:
            notes.append(
                f"chat {chat_id}: the saved active message {active_id} is gone; showing the "
                "newest path instead"
            )
        tree.truncate_to(active if active is not None else tree.leaf_of(tree.root))
        return tree
