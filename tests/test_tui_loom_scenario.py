"""The loom's whole scenario in the app, on the real model: reroll twice, switch
siblings on an earlier message, branch at token 5 of an earlier reply, grow 3 alternatives,
jump to a node in the tree screen, quit and reopen. After reopening, the tree, the heatmap and
token inspection are the same, and nothing is generated."""

from __future__ import annotations

import pytest
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

from ezchat.chat.tree import Made
from ezchat.settings.config import Config, save_config
from ezchat.tui.grow_panel import GrowPanel
from ezchat.tui.heat_view import HeatText
from ezchat.tui.token_inspection import stored_candidates
from ezchat.tui.tree_screen import TreeScreen

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def _shape(tree) -> list[tuple]:
    return [
        (n.id, n.parent.id, n.role, n.content, n.origin.encode(), n.tokens, n.token_info)
        for n in tree.walk()
    ]


def _seen(screen) -> tuple[list, list]:
    """What the heatmap shows for each reply, and the stored candidates of each reply token."""
    heat = [str(h.render()) for h in screen.query(HeatText)]
    thread = screen.thread
    inspected = []
    for index, message in enumerate(thread.messages):
        if message["role"] == "bot":
            for position in range(len(thread.node_at(index).tokens or ())):
                found = stored_candidates(thread, index, position, 10)
                assert found is not None  # every reply token is known: nothing to compute
                inspected.append((index, position, [(c.id, float(c[1])) for c in found[0]]))
    return heat, inspected


async def test_the_loom_scenario_reopens_the_same(tmp_path):
    save_config(Config(loom={"grow": 3}))
    store_path = tmp_path / "chats.db"
    app = make_app(store_path, sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=10)
        screen = app.chat_screen
        thread = screen.thread
        thread.sampler.seed = 5
        await send(pilot, "Name a colour.")
        for _ in range(2):  # 1. reroll twice
            await pilot.press("ctrl+r")
            await wait_idle(pilot)
        await send(pilot, "Why that one?")
        third = thread.node_at(1)
        assert [n.origin.made for n in thread.tree.siblings(third)] == [
            Made.REPLY,
            Made.REROLL,
            Made.REROLL,
        ]
        # 2. switch siblings on the earlier reply, and back: its turn after it follows
        path = [n.id for n in thread.tree.active_path]
        screen.conversation.view_at(1).focus()
        await pilot.press("left")
        await wait_idle(pilot)
        assert thread.node_at(1) is thread.tree.siblings(third)[1] and len(thread.messages) == 2
        screen.conversation.view_at(1).focus()
        await pilot.press("right")
        await wait_idle(pilot)
        assert [n.id for n in thread.tree.active_path] == path
        # 3. branch at token 5 of the earlier reply (not the last one)
        position = min(5, len(third.tokens) - 1)
        screen.conversation.view_at(1).focus()
        await pilot.press("t")
        last = len(third.tokens) - 1
        await wait_until(pilot, lambda: screen._inspecting == (1, last), "the reply's tokens")
        await pilot.press(*["left"] * (last - position))
        await wait_until(pilot, lambda: screen._inspecting == (1, position), "token 5")
        await pilot.pause()
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: thread.node_at(1) is not third, "the branch")
        await wait_idle(pilot)
        branch = thread.node_at(1)
        assert branch.origin.describe() == f"branch at token {position}"
        # 4. grow 3 alternatives of the branch, pick the second
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, GrowPanel), "the grow panel")
        panel = app.screen
        await wait_until(pilot, lambda: not panel.growing, "the replies to grow")
        await pilot.press("2")
        await wait_until(pilot, lambda: app.screen is screen, "the panel to close")
        await wait_idle(pilot)
        grown = [n for n in thread.tree.siblings(branch) if n.origin.made is Made.GROW]
        assert len(grown) == 3 and thread.node_at(1) is grown[1]
        # 5. the tree screen: jump back to the third reply's follow-up
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen), "the tree screen")
        await pilot.pause()
        app.screen.view.go_to(third.children[0])
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the chat again")
        await wait_idle(pilot)
        assert [n.id for n in thread.tree.active_path] == path
        await pilot.press("f10")
        await pilot.pause()
        shape, active, seen = _shape(thread.tree), path, _seen(screen)
        assert seen[0] and seen[1]
        chat_id = screen.chat.chat_id

    # 6. quit and reopen: the same tree, path, heatmap and inspection, nothing generated
    again = make_app(store_path, resume=True)
    async with again.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = again.chat_screen
        assert screen.chat.chat_id == chat_id
        assert _shape(screen.thread.tree) == shape
        assert [n.id for n in screen.thread.tree.active_path] == active
        await pilot.press("f10")
        await pilot.pause()
        assert _seen(screen) == seen
        assert screen.thread.last_result is None  # no reply was generated
