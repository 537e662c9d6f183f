"""A snapshot of the tree screen over a tree built here (forks, a branch, grown replies,
probabilities, a bookmark, a collapsed subtree and a search hit), pushed on the real app: no
generation, so it is the same on every run.

Update it after a deliberate change with ``pytest tests/test_tui_snapshots_tree.py
--snapshot-update`` and look at the report before committing."""

from __future__ import annotations

import pytest
from tui_support import wait_loaded, wait_until

from ezchat.chat.tree import Made, Origin, TokenInfo, Tree
from ezchat.session import ChatOptions
from ezchat.tui import EzChatApp
from ezchat.tui.tree_screen import TreeScreen

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow

SIZE = (120, 30)


def sample_tree() -> Tree:
    tree = Tree()

    def add(parent, role, text, origin=None, probabilities=()):
        node = tree.add(parent, {"role": role, "content": text}, origin)
        if probabilities:
            node.token_info = [TokenInfo(i, p) for i, p in enumerate(probabilities)]
        return node

    system = add(tree.root, "system", "You are a helpful assistant.")
    question = add(system, "user", "What is the capital of France?")
    paris = add(question, "bot", "Paris is the capital of France.", Origin(Made.REPLY), (0.9, 0.8))
    follow = add(paris, "user", "And of Italy?")
    add(follow, "bot", "Rome.", Origin(Made.REPLY), (0.95,))
    reroll = add(question, "bot", "The capital is **Paris**.", Origin(Made.REROLL), (0.6, 0.5))
    reroll.bookmarked = True
    branch = add(
        question, "bot", "France's capital city is Lyon.", Origin(Made.BRANCH, 4), (0.7, 0.1)
    )
    add(branch, "user", "Are you sure? \x1b]0;not a title\x07")
    for n in range(1, 4):
        grown = add(question, "bot", f"Paris ({n}).", Origin(Made.GROW, n, 3), (0.5 + n / 10,))
        if n == 2:
            add(grown, "user", "Tell me more.")
            add(tree.nodes[max(tree.nodes)], "bot", "It is on the Seine.", Origin(Made.REPLY))
    tree.switch_to(follow)
    return tree


def test_tree_screen(snap_compare):
    tree = sample_tree()

    async def open_tree(pilot) -> None:
        await wait_loaded(pilot)
        await pilot.app.workers.wait_for_complete()
        screen = TreeScreen(tree)
        pilot.app.push_screen(screen)
        await wait_until(pilot, lambda: screen.query("TreeView"), "the tree screen")
        await pilot.pause()
        await pilot.press("G", "k", "k", "h")  # collapse the second grown reply's subtree
        await pilot.press("/", *"lyon", "enter")
        await pilot.pause()

    app = EzChatApp(ChatOptions(context_length=2048, seed=1234), show_timings=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_tree)
