"""A chat as a tree: every message is a node, and every reroll, branch, continue, edit or
N-way growth adds a sibling or a child, so nothing is ever overwritten.

The conversation a prompt is made of is the *active path*: from the root down to the active
leaf. Each node remembers which of its children was followed last (``chosen``), so switching
to any node makes its path active and then follows the chosen children down to a leaf, the way
the llama.cpp web UI's message tree does.

A node holds the Thread's ``Message`` (a dict: role, content, reasoning) itself, so the
Thread's ``messages`` list is simply the messages of the active path, and editing a message
edits its node. Node ids are small integers numbered by the tree (0 is the root, which holds
no message); storage keeps them as they are, so a saved tree reopens with the same ids.

This module is data only: no model, no store, no llama_cpp.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Made(StrEnum):
    """How a node came to be: shown in the tree view, stored with the node."""

    MESSAGE = "message"  # typed or added (a user or system message)
    REPLY = "reply"  # the bot's reply to the conversation before it
    REROLL = "reroll"  # another reply to the same conversation
    BRANCH = "branch"  # a reply rewritten from one of its tokens on (``at``: the token)
    CONTINUE = "continue"  # a reply extended (a sibling holding the longer text)
    EDIT = "edit"  # a message's text changed by the user
    GROW = "grow"  # one of N replies grown at once (``at`` of ``of``)
    VERSION = "version"  # a version of a message saved before chats were trees


@dataclass(frozen=True, slots=True)
class Origin:
    """How a node was made, with its detail: the token a branch took another path at, or
    which of N grown replies it is."""

    made: Made = Made.MESSAGE
    at: int | None = None
    of: int | None = None

    def describe(self) -> str:
        if self.made is Made.BRANCH and self.at is not None:
            return f"branch at token {self.at}"
        if self.made is Made.GROW and self.at is not None and self.of is not None:
            return f"grown {self.at} of {self.of}"
        return str(self.made)

    def encode(self) -> str:
        """One short text for storage and export: ``reroll``, ``branch@12``, ``grow@2/4``."""
        text = str(self.made)
        if self.at is not None:
            text += f"@{self.at}"
            if self.of is not None:
                text += f"/{self.of}"
        return text

    @classmethod
    def decode(cls, text: str) -> Origin:
        """The Origin ``encode`` wrote; an unknown kind (a newer ezchat's) reads as a message."""
        made, _, detail = str(text).partition("@")
        at_text, _, of_text = detail.partition("/")
        try:
            kind = Made(made)
        except ValueError:
            return cls()
        at = int(at_text) if at_text.isdigit() else None
        of = int(of_text) if of_text.isdigit() else None
        return cls(kind, at, of)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A generated token as the model weighed it: its id, its probability (full softmax), and
    the top alternatives at its position, best first (``(token id, probability)``)."""

    id: int
    probability: float
    top: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        # Held at the float32 precision the saved chat keeps (ezchat.storage.tokeninfo), so a
        # reply's weighing is the same before and after the chat is reopened.
        object.__setattr__(self, "probability", _float32(self.probability))
        object.__setattr__(self, "top", tuple((int(t), _float32(p)) for t, p in self.top))


def _float32(value: float) -> float:
    return _FLOAT32.unpack(_FLOAT32.pack(value))[0]


_FLOAT32 = struct.Struct("<f")


@dataclass(eq=False, slots=True)
class Node:
    id: int
    parent: Node | None
    message: dict[str, Any] | None  # None only for the root
    origin: Origin = field(default_factory=Origin)
    children: list[Node] = field(default_factory=list, repr=False)
    # the child followed when this node's path is made active (the one visited last)
    chosen: Node | None = field(default=None, repr=False)
    # a reply's token ids as generated, and how the model weighed each (None: not known)
    tokens: list[int] | None = field(default=None, repr=False)
    # aligned with ``tokens``; an entry is None where that token's weighing is unknown (the
    # head of a reply continued from text the model did not write)
    token_info: list[TokenInfo | None] | None = field(default=None, repr=False)
    bookmarked: bool = False
    created: float = field(default_factory=time.time)

    @property
    def role(self) -> str:
        return self.message["role"] if self.message is not None else ""

    @property
    def content(self) -> str:
        return self.message["content"] if self.message is not None else ""

    @property
    def depth(self) -> int:
        """0 for a top-level message (a child of the root)."""
        depth, node = -1, self.parent
        while node is not None:
            depth, node = depth + 1, node.parent
        return depth

    @property
    def mean_probability(self) -> float | None:
        """The mean probability of the reply's tokens as generated; None where unknown."""
        known = [info.probability for info in self.token_info or () if info is not None]
        return sum(known) / len(known) if known else None

    def sibling_index(self) -> tuple[int, int]:
        """(its 0-based place among its parent's children, how many there are)."""
        if self.parent is None:
            return 0, 1
        return self.parent.children.index(self), len(self.parent.children)


class Tree:
    """The nodes of one chat, and which path is active."""

    def __init__(self) -> None:
        self.root = Node(0, None, None)
        self.nodes: dict[int, Node] = {0: self.root}
        self._active: Node = self.root
        self._path: list[Node] | None = []  # the active path, kept until the path changes
        self._next_id = 1

    @property
    def next_id(self) -> int:
        """The id the next node added without one gets (a reply saved as it streams, before
        the Thread records its node)."""
        return self._next_id

    @property
    def active(self) -> Node:
        """The active path's leaf (the root while the chat is empty)."""
        return self._active

    @active.setter
    def active(self, node: Node) -> None:
        self._active = node
        self._path = None

    # --- building ------------------------------------------------------------------------------

    def add(
        self,
        parent: Node,
        message: dict[str, Any],
        origin: Origin | None = None,
        *,
        id: int | None = None,
        activate: bool = True,
        **fields: Any,
    ) -> Node:
        """A new child of ``parent``, last among its siblings. ``id`` restores a saved node's
        id; ``activate`` makes the new node the active leaf (it becomes its parent's chosen)."""
        if id is None:
            id = self._next_id
        elif id in self.nodes:
            raise ValueError(f"node id {id} is taken")
        self._next_id = max(self._next_id, id + 1)
        node = Node(id, parent, message, origin or Origin(), **fields)
        parent.children.append(node)
        self.nodes[id] = node
        if activate:
            parent.chosen = node
            self.switch_to(node)
        elif parent.chosen is None:
            parent.chosen = node
        return node

    def append(self, message: dict[str, Any], origin: Origin | None = None, **fields: Any) -> Node:
        """A new child of the active leaf, made the active leaf."""
        return self.add(self.active, message, origin, **fields)

    def add_sibling(
        self, node: Node, message: dict[str, Any], origin: Origin, **fields: Any
    ) -> Node:
        """An alternative to ``node``: a new child of its parent, made active."""
        if node.parent is None:
            raise ValueError("the root has no siblings")
        return self.add(node.parent, message, origin, **fields)

    def insert_above(
        self, node: Node, message: dict[str, Any], origin: Origin | None = None
    ) -> Node:
        """A new node in ``node``'s place among its siblings, with ``node`` as its one child
        (a message put into the conversation before another)."""
        parent = node.parent
        if parent is None:
            raise ValueError("nothing goes above the root")
        new = Node(self._next_id, parent, message, origin or Origin())
        self._next_id += 1
        self.nodes[new.id] = new
        parent.children[parent.children.index(node)] = new
        if parent.chosen is node:
            parent.chosen = new
        node.parent = new
        new.children.append(node)
        new.chosen = node
        self._path = None
        return new

    def splice_out(self, node: Node) -> None:
        """Remove ``node`` alone: its children take its place among its siblings (a message
        taken out of the middle of a conversation). The active path stays on the same leaf,
        or ends at the parent when ``node`` was the leaf."""
        parent = node.parent
        if parent is None:
            raise ValueError("the root cannot be removed")
        leaf = self.active
        place = parent.children.index(node)
        parent.children[place : place + 1] = node.children
        for child in node.children:
            child.parent = parent
        if parent.chosen is node:
            parent.chosen = node.chosen or (parent.children[-1] if parent.children else None)
        del self.nodes[node.id]
        if leaf is node:
            self.truncate_to(parent)
        else:
            self.switch_to(leaf)

    # --- the active path -----------------------------------------------------------------------

    def path_to(self, node: Node) -> list[Node]:
        """The nodes from the first message down to ``node`` (the root left out)."""
        path = []
        while node.parent is not None:
            path.append(node)
            node = node.parent
        path.reverse()
        return path

    @property
    def active_path(self) -> list[Node]:
        return list(self.path_view())

    def path_view(self) -> list[Node]:
        """The active path itself, not a copy: for readers that do not change it."""
        if self._path is None:
            self._path = self.path_to(self._active)
        return self._path

    def leaf_of(self, node: Node) -> Node:
        """Where following ``chosen`` from ``node`` ends."""
        while node.chosen is not None:
            node = node.chosen
        return node

    def switch_to(self, node: Node) -> Node:
        """Make ``node``'s path active, continuing down its chosen children; returns the new
        active leaf. Every node on the way remembers the child taken."""
        if self.nodes.get(node.id) is not node:
            raise ValueError(f"node {node.id} is not in this tree")
        child = node
        while child.parent is not None:
            child.parent.chosen = child
            child = child.parent
        self.active = self.leaf_of(node)
        return self.active

    def truncate_to(self, node: Node) -> None:
        """Make ``node`` the active leaf itself (its children stay, not followed)."""
        self.switch_to(node)
        self.active = node

    def siblings(self, node: Node) -> list[Node]:
        return list(node.parent.children) if node.parent is not None else [node]

    def sibling(self, node: Node, step: int) -> Node | None:
        """The sibling ``step`` places after (negative: before) ``node``; None past an end."""
        siblings = self.siblings(node)
        place = siblings.index(node) + step
        return siblings[place] if 0 <= place < len(siblings) else None

    @staticmethod
    def common_prefix(a: list[Node], b: list[Node]) -> int:
        """How many leading nodes two paths share."""
        shared = 0
        for left, right in zip(a, b, strict=False):
            if left is not right:
                break
            shared += 1
        return shared

    # --- reading -------------------------------------------------------------------------------

    def walk(self, node: Node | None = None) -> Iterator[Node]:
        """Every node under ``node`` (default: the whole tree), depth first, in sibling order;
        the root itself is left out."""
        stack = list(reversed((node or self.root).children))
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(current.children))

    def __len__(self) -> int:
        return len(self.nodes) - 1

    def search(self, text: str) -> list[Node]:
        """Nodes whose content or reasoning holds ``text`` (case-insensitive), in walk order."""
        needle = text.casefold()
        found = []
        for node in self.walk():
            message = node.message or {}
            haystack = f"{message.get('content', '')}\n{message.get('reasoning', '')}"
            if needle and needle in haystack.casefold():
                found.append(node)
        return found

    def bookmarks(self) -> list[Node]:
        return [node for node in self.walk() if node.bookmarked]

    # --- removing ------------------------------------------------------------------------------

    def delete(self, node: Node) -> list[Node]:
        """Remove ``node`` and everything under it; returns the removed nodes. When the active
        path ran through it, the path moves to a remaining sibling (or ends at the parent)."""
        if node.parent is None:
            raise ValueError("the root cannot be deleted")
        removed = [node, *self.walk(node)]
        parent = node.parent
        was_active = node in self.active_path
        parent.children.remove(node)
        for gone in removed:
            del self.nodes[gone.id]
        if parent.chosen is node:
            parent.chosen = parent.children[-1] if parent.children else None
        if was_active:
            self.switch_to(parent)
        return removed
