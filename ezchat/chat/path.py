"""``MessagePath``: a Thread's ``messages``, a list-like view of its tree's active path.

Code written for easy-llama's Thread treats ``messages`` as a list: it reads, appends, inserts
and deletes. Each of those is a tree operation here, chosen so that the active path afterwards
is the list the caller expects, and nothing off the path is lost: ``append`` adds a child of
the active leaf, ``insert`` puts a node above the one at that place, and ``del`` takes nodes
out of the path, their other children moving up to the parent (ezchat.chat.tree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableSequence
from typing import Any, overload

from .tree import Made, Node, Origin, Tree


def origin_for(message: dict[str, Any]) -> Origin:
    """How a message added as such was made: a bot message is a reply, the rest messages."""
    return Origin(Made.REPLY if message.get("role") == "bot" else Made.MESSAGE)


class MessagePath(MutableSequence):
    """The messages of ``tree``'s active path; ``coerce`` makes an added dict a Message."""

    def __init__(self, tree: Tree, coerce: Callable[[dict], dict]) -> None:
        self._tree = tree
        self._coerce = coerce

    def _nodes(self) -> list[Node]:
        return self._tree.path_view()

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index):
        nodes = self._nodes()
        if isinstance(index, slice):
            return [node.message for node in nodes[index]]
        return nodes[index].message

    def __len__(self) -> int:
        return len(self._nodes())

    def __iter__(self) -> Iterator[Any]:
        return iter([node.message for node in self._nodes()])

    def __setitem__(self, index, value) -> None:
        nodes = self._nodes()
        if isinstance(index, slice):
            raise TypeError("assign a whole list to Thread.messages instead of a slice")
        nodes[index].message = self._coerce(value)

    def __delitem__(self, index) -> None:
        nodes = list(self._nodes())
        gone = nodes[index] if isinstance(index, slice) else [nodes[index]]
        kept = [node for node in nodes if node not in gone]
        for node in reversed(gone):
            self._tree.splice_out(node)
        if kept:
            self._tree.truncate_to(kept[-1])
        else:
            self._tree.truncate_to(self._tree.root)

    def insert(self, index: int, value: dict) -> None:
        message = self._coerce(value)
        nodes = self._nodes()
        if index < 0:
            index = max(0, len(nodes) + index)
        if index >= len(nodes):
            self._tree.append(message, origin_for(message))
            return
        leaf = self._tree.active
        self._tree.insert_above(nodes[index], message, origin_for(message))
        self._tree.switch_to(leaf)

    def append(self, value: dict) -> None:
        message = self._coerce(value)
        self._tree.append(message, origin_for(message))

    def extend(self, values: Iterable[dict]) -> None:
        for value in list(values):
            self.append(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, MessagePath)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))


def replace_path(tree: Tree, messages: list[dict]) -> None:
    """Make ``messages`` the active path (``thread.messages = [...]``): the nodes that already
    hold these very messages, from the top, are kept, and the rest are added under them; the
    old path stays in the tree as a branch."""
    node = tree.root
    kept = 0
    for message in messages:
        child = next((c for c in node.children if c.message is message), None)
        if child is None:
            break
        node, kept = child, kept + 1
    tree.truncate_to(node)
    held = {id(n.message) for n in tree.walk()}
    for message in messages[kept:]:
        if id(message) in held and hasattr(message, "copy_message"):
            message = message.copy_message()  # a node of its own, not one shared dict
        tree.append(message, origin_for(message))
