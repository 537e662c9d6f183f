"""The loom's ``!commands``: the chat as the tree it is (every reroll, branch, continue and edit
kept as a sibling), and moving to another of its branches.

``!tree`` prints one line per node, indented by depth: its id, who wrote it, how it was made,
the mean probability of its tokens where the model's weighing is known, and the start of its
text; ``*`` marks the conversation's active path. ``!go N`` makes node N's branch the
conversation (down the replies last visited under it) and prints it. ``!alt N`` grows N
replies at once (``Thread.grow``), lists them and continues from the one picked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..chat.tree import Node
from ..errors import EzChatError
from ..interrupt import CancelOnSigint
from ..safetext import visible
from ..settings.config import MAX_GROW, load_config
from .output import ROLE_LABELS

if TYPE_CHECKING:
    from .loop import Repl

PREVIEW_CHARACTERS = 48
ACTIVE_MARK = "*"
TREE_LEGEND = f"({ACTIVE_MARK} marks the active path; !go N switches to node N)"


def tree(repl: Repl, arg: str) -> None:
    chat_tree = repl.thread.tree
    if not len(chat_tree):
        repl.note("(the chat is empty: no tree yet)")
        return
    active = {id(node) for node in chat_tree.path_view()}
    for node in chat_tree.walk():
        on_path = id(node) in active
        repl.out.line(tree_line(node, on_path), "" if on_path else "note")
    repl.note(TREE_LEGEND)


def tree_line(node: Node, on_path: bool) -> str:
    """One node as ``!tree`` shows it: ``* 3 bot (reroll, p 0.81): Hello! How can I…``."""
    mark = ACTIVE_MARK if on_path else " "
    how = node.origin.describe()
    mean = node.mean_probability
    if mean is not None:
        how += f", p {mean:.2f}"
    label = ROLE_LABELS.get(node.role, node.role)
    return f"{mark} {'  ' * node.depth}{node.id} {label} ({how}): {text_preview(node.content)}"


def text_preview(text: str, limit: int = PREVIEW_CHARACTERS) -> str:
    """The start of a message on one line: whitespace runs as one space, terminal controls as
    their pictures (``visible``, before the cut, so a cut never splits a control's picture)."""
    flat = visible(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def go(repl: Repl, arg: str) -> None:
    nodes = repl.thread.tree.nodes
    if not arg.isdigit():
        given = f", not {arg!r}" if arg else ""
        raise EzChatError(f"go needs a node number from !tree, e.g. !go 2{given}")
    number = int(arg)
    if number == 0 or number not in nodes:  # 0 is the root, which holds no message
        raise EzChatError(f"there is no node {number} in this chat; !tree lists them")
    repl.thread.switch_to(nodes[number])
    repl.stopped = False  # Enter rerolls only the reply just stopped, not one switched to
    repl.show_messages()
    repl.note(f"(now on node {number}'s branch: {len(repl.thread.messages)} message(s))")


def alt(repl: Repl, arg: str) -> None:
    """Grow N replies at once (Ctrl-C stops all, keeping each part), list them, and make
    the one picked the conversation's; each stays in the tree as a sibling."""
    if arg and not (arg.isdigit() and 1 <= int(arg) <= MAX_GROW):
        raise EzChatError(f"!alt takes how many replies to grow, 1 to {MAX_GROW}, like !alt 3")
    n = int(arg) if arg else load_config().grow
    with CancelOnSigint() as interrupt:
        grown = repl.thread.grow(n)
        interrupt.watch(grown)
        repl.note(f"(growing {n} replies at once; Ctrl-C stops them all)")
        grown.run()
    for i, message in enumerate(grown.messages, start=1):
        repl.out.line(f"{i}) {text_preview(message['content'], 300)}")
    choice = (repl.read_sub_prompt(f"pick 1-{n} (Enter: 1)> ", "note") or "1").strip() or "1"
    if not choice.isdigit():
        raise EzChatError(f"pick a reply by its number, 1 to {n}; reply 1 stays the one")
    grown.pick(int(choice) - 1)
    repl.stopped = False
    repl.note(f"(reply {choice} of {n} continues the chat; the others stay in the tree)")
