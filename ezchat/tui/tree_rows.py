"""The tree screen's rows: a chat tree flattened to one line per node, in walk order.

A chat tree is deep and narrow: every message is a level, so a plain chat of 200 messages is
200 levels deep, and indenting each level would push a long chat off the screen. So a row is
indented only where the conversation forks: the alternatives under a fork get a guide (``├``,
the last ``└``), and a conversation that goes on after an alternative stays at that
alternative's indent, under a ``│`` while later alternatives follow:

    user   hi
    ├ bot    hello          (the first reply)
    │ user   how are you?   (the conversation after it)
    └ bot    hey            (a reroll of the reply)

This module is plain data (no Textual), so building the rows of a big tree costs one walk.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..chat.tree import Node, Tree
from ..safetext import visible

# Guides beyond this many cells are cut at the left (behind "⋯ "), so a tree forked at every
# message still leaves room for the rows' text.
MAX_GUIDE_CELLS = 24
PREVIEW_CHARS = 200


@dataclass(frozen=True, slots=True)
class Row:
    node: Node
    guides: str  # the fork guides drawn before the row's text, two cells a fork
    hidden: int = 0  # how many nodes under it a collapse hides


def tree_rows(tree: Tree, collapsed: Collection[int] = ()) -> list[Row]:
    """One row for each node that no collapsed node hides, in walk order (depth first,
    siblings in order). ``collapsed`` holds node ids."""
    rows: list[Row] = []
    # (node, the guides its row gets, the guides the rows under it inherit)
    stack = _children_entries(tree.root, "")
    while stack:
        node, guides, below = stack.pop()
        if node.id in collapsed and node.children:
            rows.append(Row(node, _cut(guides), sum(1 for _ in tree.walk(node))))
            continue
        rows.append(Row(node, _cut(guides)))
        stack.extend(_children_entries(node, below))
    return rows


def _children_entries(node: Node, below: str) -> list[tuple[Node, str, str]]:
    """The stack entries of ``node``'s children, reversed so the first is popped first."""
    children = node.children
    if len(children) == 1:
        return [(children[0], below, below)]
    last = len(children) - 1
    entries = [
        (child, below + ("└ " if i == last else "├ "), below + ("  " if i == last else "│ "))
        for i, child in enumerate(children)
    ]
    entries.reverse()
    return entries


def _cut(guides: str) -> str:
    if len(guides) <= MAX_GUIDE_CELLS:
        return guides
    return "⋯ " + guides[len(guides) - MAX_GUIDE_CELLS + 2 :]


def preview(node: Node, chars: int = PREVIEW_CHARS) -> str:
    """The start of a node's text on one line, safe to show (node text is the model's or an
    imported file's). A reply with only reasoning so far shows the reasoning's start."""
    message = node.message or {}
    text = message.get("content") or ""
    label = ""
    if not text.strip() and message.get("reasoning"):
        text, label = message["reasoning"], "(reasoning) "
    # only the start is read, so a huge message costs no more than a short one
    flat = " ".join(text[: chars * 4].split())
    return label + visible(flat[:chars])


def percent(node: Node) -> str:
    """The node's mean token probability as a percentage; "" where it is not known."""
    probability = node.mean_probability
    return "" if probability is None else f"{probability * 100:.0f}%"
