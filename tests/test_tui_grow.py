"""The app's grow action (ctrl+o): N replies at once in the grow panel, one picked, all N kept
in the tree and in the chats file; Escape stops all N and each keeps its part."""

from __future__ import annotations

import pytest
from gates import holding
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

from ezchat.chat.tree import Made
from ezchat.safetext import visible
from ezchat.settings.config import Config, save_config
from ezchat.storage.store import ChatStore
from ezchat.tui.grow_panel import GrowPanel

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def _grown(nodes) -> list:
    return [node for node in nodes if node.origin.made is Made.GROW]


async def _open_panel(pilot) -> GrowPanel:
    app = pilot.app
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(app.screen, GrowPanel), "the grow panel")
    return app.screen


async def test_grow_three_pick_the_second_and_reopen_with_all_three(tmp_path):
    save_config(Config(loom={"grow": 3}))
    store_path = tmp_path / "chats.db"
    # a non-greedy preset with a fixed seed: sequence i samples with seed + i, so they differ
    app = make_app(store_path, sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        screen = app.chat_screen
        screen.thread.sampler.seed = 11
        await send(pilot, "Name a colour.")
        first_reply = screen.thread.node_at(1)

        panel = await _open_panel(pilot)
        await wait_until(pilot, lambda: not panel.growing, "the replies to grow")
        await wait_until(
            pilot,
            lambda: len(_grown(screen.thread.tree.siblings(first_reply))) == 3,
            "the grown replies in the chat's tree",
        )
        grown = _grown(screen.thread.tree.siblings(first_reply))
        assert [node.origin.describe() for node in grown] == [f"grown {i} of 3" for i in (1, 2, 3)]
        assert all(node.content for node in grown)
        assert all(node.tokens and node.token_info for node in grown)
        shown = [str(row.render()) for row in panel.rows]
        assert shown == [f"{i}) {visible(node.content)}" for i, node in enumerate(grown, 1)]

        await pilot.press("2")
        await wait_until(pilot, lambda: app.screen is screen, "the panel to close")
        await wait_idle(pilot)
        assert screen.thread.node_at(1) is grown[1]
        assert [m["content"] for m in screen.thread.messages] == [
            "Name a colour.",
            grown[1].content,
        ]
        assert [v.content for v in screen.conversation.views] == [
            "Name a colour.",
            grown[1].content,
        ]
        # the reply that ended the chat stays, a sibling of the three
        assert screen.chat.versions(1) == [first_reply.content] + [n.content for n in grown]
        chat_id = screen.chat.chat_id
        expected = [(node.id, node.content, node.origin.encode()) for node in grown]
        picked = grown[1].id
        with ChatStore(store_path) as other:  # saved already, before the app closes
            stored = _grown(other.load_tree(chat_id).walk())
            assert [(n.id, n.content, n.origin.encode()) for n in stored] == expected

    again = make_app(store_path, resume=True)
    async with again.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = again.chat_screen
        assert screen.chat.chat_id == chat_id
        tree = screen.thread.tree
        reopened = _grown(tree.walk())
        assert [(n.id, n.content, n.origin.encode()) for n in reopened] == expected
        assert all(node.tokens and node.token_info for node in reopened)
        assert tree.active.id == picked
        assert screen.conversation.views[1].content == reopened[1].content


async def test_escape_stops_all_the_growing_replies_and_each_keeps_its_part(tmp_path):
    save_config(Config(loom={"grow": 2}))
    store_path = tmp_path / "chats.db"
    app = make_app(store_path, sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=8)
        screen = app.chat_screen
        await send(pilot, "Tell me a long story about a dragon.")
        screen.thread.sampler.max_len_tokens = 400
        with holding("grow", lambda steps, text: steps >= 6) as gate:
            panel = await _open_panel(pilot)
            await wait_until(pilot, gate.held.is_set, "the grow held at its 6th step")
            await wait_until(
                pilot, lambda: all(screen._grown_texts()[:2]) and screen._growing, "both shown"
            )
            await pilot.press("escape")  # the stop is seen before the next step
        await wait_until(pilot, lambda: not panel.growing, "the stop")
        grown = screen._growing.nodes
        assert len(grown) == 2
        assert all(node.content for node in grown)
        assert all(len(node.tokens) <= 6 for node in grown)
        assert "cancelled" in [r.stop_reason for r in screen._growing.results]
        await pilot.press("escape")  # closes the panel; reply 1 stays the chat's
        await wait_until(pilot, lambda: app.screen is screen, "the panel to close")
        await wait_idle(pilot)
        assert screen.thread.messages[-1]["content"] == grown[0].content
        with ChatStore(store_path) as other:
            stored = _grown(other.load_tree(screen.chat.chat_id).walk())
            assert [n.content for n in stored] == [n.content for n in grown]
