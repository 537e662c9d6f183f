"""A chat's conversation as a list: the messages on its active path, each with its siblings as
its versions (rerolls, branches, edits), mixed into ChatStore over the tree in ``nodes``
(ezchat.storage.nodes). For callers that see a chat as a list: the chat list, plain scripts,
benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .nodes import NodeRows, default_origin, title_from_text

__all__ = ["MessageRows", "StoredMessage", "title_from_text"]


@dataclass(slots=True)
class StoredMessage:
    """One message of the active path: ``content`` is its node's text, ``versions`` the texts
    of it and its siblings, ``current`` its place among them. ``id`` is its node id.
    ``tokens`` are its token ids when known (a reply as the model generated it)."""

    id: int
    role: str
    content: str
    versions: list[str]
    current: int
    tokens: list[int] | None = field(default=None, repr=False)
    # each version's reasoning ('' where it has none), beside ``versions``
    reasonings: list[str] = field(default_factory=list, repr=False)

    @property
    def reasoning(self) -> str:
        return self.reasonings[self.current] if self.current < len(self.reasonings) else ""


class MessageRows(NodeRows):
    """The active path of the chats in a StoreFile, as lists (mixed into ChatStore)."""

    def add_message(
        self,
        chat_id: int,
        role: str,
        content: str,
        *,
        tokens: list[int] | None = None,
        reasoning: str = "",
    ) -> int:
        """Append a message to the active path (a child of its last node) and return its node
        id. ``tokens``: the ids the model generated for a reply, kept so a reopened chat
        matches its saved state."""
        with self._lock:  # no other write between reading the leaf and adding under it
            with self._reading() as conn:
                self._require_chat(conn, chat_id)
                leaf = conn.execute(
                    "SELECT active_leaf FROM chats WHERE id = ?", (chat_id,)
                ).fetchone()[0]
            return self.add_node(chat_id, leaf, role, content, tokens=tokens, reasoning=reasoning)

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """The chat's active path in order, each message with its siblings as versions."""
        found = []
        for node in self.load_tree(chat_id).active_path:
            siblings = node.parent.children
            found.append(
                StoredMessage(
                    node.id,
                    node.role,
                    node.content,
                    [sibling.content for sibling in siblings],
                    siblings.index(node),
                    node.tokens,
                    [(sibling.message or {}).get("reasoning", "") for sibling in siblings],
                )
            )
        return found

    def insert_message(
        self,
        chat_id: int,
        before: int | None,
        role: str,
        content: str,
        *,
        tokens: list[int] | None = None,
    ) -> int:
        """Put a message in the active path before its message ``before`` (None: at the end);
        returns its node id. It takes that message's place: the message, with its versions,
        hangs under the new one."""
        if before is None:
            return self.add_message(chat_id, role, content, tokens=tokens)
        role = self._role(role)
        with self._writing() as conn:
            parent, _ = self._require_node(conn, chat_id, before)
            node_id = self._next_id(conn, chat_id)
            self._insert_node(
                conn, chat_id, node_id, parent, role, content, default_origin(role), tokens=tokens
            )
            conn.execute(
                "UPDATE nodes SET parent = ? WHERE chat_id = ? AND parent = ? AND id != ?",
                (node_id, chat_id, parent, node_id),
            )
            conn.execute(
                "UPDATE nodes SET chosen = ? WHERE chat_id = ? AND id = ?",
                (before, chat_id, node_id),
            )
            conn.execute(
                "UPDATE nodes SET chosen = ? WHERE chat_id = ? AND id = ?",
                (node_id, chat_id, parent),
            )
            self._maybe_title(conn, chat_id, role, content)
            self._touch(conn, chat_id)
            return node_id

    def delete_message(self, chat_id: int, node_id: int) -> None:
        """Take a message out of the active path, with its versions (its siblings and what
        hangs under them); the messages after it move up under its parent."""
        with self._writing() as conn:
            parent, _ = self._require_node(conn, chat_id, node_id)
            tree = self._tree(conn, chat_id, [])
            node = tree.nodes.get(node_id)
            if node is not None:
                gone = [
                    n.id
                    for sibling in tree.siblings(node)
                    if sibling is not node
                    for n in (sibling, *tree.walk(sibling))
                ]
                conn.executemany(
                    "DELETE FROM nodes WHERE chat_id = ? AND id = ?", [(chat_id, i) for i in gone]
                )
            chosen = node.chosen.id if node is not None and node.chosen is not None else 0
            conn.execute(
                "UPDATE nodes SET parent = ? WHERE chat_id = ? AND parent = ?",
                (parent, chat_id, node_id),
            )
            conn.execute("DELETE FROM nodes WHERE chat_id = ? AND id = ?", (chat_id, node_id))
            conn.execute(
                "UPDATE nodes SET chosen = ? WHERE chat_id = ? AND id = ?",
                (chosen, chat_id, parent),
            )
            conn.execute(
                "UPDATE chats SET active_leaf = ? WHERE id = ? AND active_leaf = ?",
                (parent, chat_id, node_id),
            )
            self._touch(conn, chat_id)

    def clear_messages(self, chat_id: int, keep_system: bool = True) -> None:
        """Delete a chat's messages (but its leading system messages on the path in use, with
        ``keep_system``) and its saved state."""
        with self._writing() as conn:
            self._require_chat(conn, chat_id)
            tree = self._tree(conn, chat_id, [])
            keep = tree.root
            if keep_system:
                for node in tree.active_path:
                    if node.role != "system":
                        break
                    keep = node
            kept = {node.id for node in tree.path_to(keep)}
            conn.executemany(
                "DELETE FROM nodes WHERE chat_id = ? AND id = ?",
                [(chat_id, node.id) for node in tree.walk() if node.id not in kept],
            )
            conn.execute(
                "UPDATE nodes SET chosen = 0 WHERE chat_id = ? AND id = ?", (chat_id, keep.id)
            )
            self._activate(conn, chat_id, keep.id)
            conn.execute("DELETE FROM states WHERE chat_id = ?", (chat_id,))
            self._touch(conn, chat_id)
        self._reclaim()
