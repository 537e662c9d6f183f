"""How fast the tree screen opens a chat of 2,000 nodes and pages through it: the time from
pushing the screen to its rows being drawn, and from the first of five paging keys (g,
PageDown, PageDown, G, PageUp) to the last one handled. Median and worst of ROUNDS, in the
app on the default model (which does no work here: the tree is built in memory)."""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from common import print_table

ROUNDS = 5
NODES = 2000
SIZE = (120, 40)


def big_tree(count: int, seed: int = 7):
    """Long runs of turns that fork now and then, each node with token info to draw."""
    from ezchat.chat.tree import Made, Origin, TokenInfo, Tree

    rng = random.Random(seed)
    tree = Tree()
    parent, made = tree.root, []
    while len(tree) < count:
        role = "user" if parent.role != "user" else "bot"
        origin = Origin(Made.REPLY if role == "bot" else Made.MESSAGE)
        text = f"message {len(tree)} " * 20
        node = tree.add(parent, {"role": role, "content": text}, origin)
        node.token_info = [TokenInfo(1, rng.random()) for _ in range(8)]
        made.append(node)
        parent = node if rng.random() < 0.9 else rng.choice(made)
    return tree


async def _wait(pilot, condition) -> None:
    while not condition():
        await pilot.pause(0.01)  # in a loop: until the condition holds


async def _one_round(store: Path) -> tuple[float, float]:
    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp
    from ezchat.tui.tree_screen import TreeScreen
    from ezchat.tui.tree_view import TreeView

    tree = big_tree(NODES)
    app = EzChatApp(ChatOptions(sampler="GreedyDecoding", context_length=2048), store_path=store)
    async with app.run_test(size=SIZE) as pilot:
        await _wait(pilot, lambda: app.ready)
        started = time.perf_counter()
        screen = TreeScreen(tree)
        app.push_screen(screen)
        await _wait(pilot, lambda: bool(screen.query(TreeView)) and bool(screen.view.rows))
        await pilot.pause()
        opened = time.perf_counter() - started
        started = time.perf_counter()
        await pilot.press("g", "pagedown", "pagedown", "G", "pageup")
        paged = time.perf_counter() - started
    return opened * 1000, paged * 1000


def main() -> None:
    opened, paged = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(ROUNDS):
            o, p = asyncio.run(_one_round(Path(folder) / f"chats{i}.db"))
            opened.append(o)
            paged.append(p)
    print_table(
        f"Tree screen, {NODES:,} nodes ({ROUNDS} rounds)",
        ["what", "median ms", "worst ms"],
        [
            ["open (rows drawn)", statistics.median(opened), max(opened)],
            ["5 paging keys", statistics.median(paged), max(paged)],
        ],
    )


if __name__ == "__main__":
    main()
