"""A chat is a tree in the app: rerolls and follow-ups are nodes saved as they appear, ←/→ on
any message switches among its siblings (the messages after it follow), a switch evaluates
only the tokens after the common prefix, and a reopened app finds the same tree and path."""

from __future__ import annotations

import pytest
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

from ezchat.chat.tree import Tree
from ezchat.storage.store import ChatStore

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def _shape(tree: Tree) -> list[tuple]:
    return [
        (node.id, node.parent.id, node.role, node.content, node.origin.encode())
        for node in tree.walk()
    ]


def _shared(a: list[int], b: list[int]) -> int:
    shared = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        shared += 1
    return shared


async def test_rerolls_switches_and_follow_ups_reopen_as_the_same_tree(tmp_path):
    store_path = tmp_path / "chats.db"
    # a non-greedy preset with a fixed seed: rerolls differ, and the test repeats
    app = make_app(store_path, sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        screen = app.chat_screen
        screen.thread.sampler.seed = 11
        await send(pilot, "Name a colour.")
        for _ in range(2):  # reroll twice: three replies, siblings
            await pilot.press("ctrl+r")
            await wait_idle(pilot)
        replies = screen.chat.versions(1)
        assert len(replies) == 3 and screen.chat.label(1) == "3/3"

        screen.conversation.views[-1].focus()
        await pilot.press("left")  # back to the second reply, with ← on it
        await wait_idle(pilot)
        assert screen.thread.messages[1]["content"] == replies[1]
        app.query_one("#input").focus()
        await send(pilot, "Why that one?")
        assert [m["role"] for m in screen.thread.messages] == ["user", "bot", "user", "bot"]

        # → on an earlier message: the third reply, and the follow-up stays on the second's
        # branch; the cache held the second's path, so only the tokens after the part the two
        # paths share are evaluated
        cached = list(screen.thread.model.cached_tokens)
        screen.thread.last_switch = None
        screen.conversation.views[1].focus()
        await pilot.press("right")
        await wait_until(pilot, lambda: screen.thread.last_switch is not None, "the switch")
        await wait_idle(pilot)
        assert [m["content"] for m in screen.thread.messages] == ["Name a colour.", replies[2]]
        assert [v.content for v in screen.conversation.views] == ["Name a colour.", replies[2]]
        new_path = screen.thread.model.cached_tokens
        expected = len(new_path) - _shared(cached, new_path)
        assert 0 < expected < len(new_path)
        assert screen.thread.last_switch.evaluated == expected
        pane = app.query_one("#context")
        await wait_until(pilot, lambda: "Last switch" in str(pane.render()), "the pane")
        assert f"Last switch {expected} evaluated" in str(pane.render())

        chat_id = screen.chat.chat_id
        live_shape = _shape(screen.thread.tree)
        live_path = [node.id for node in screen.thread.tree.active_path]
        # saved as it happened: another connection reads the same tree already
        with ChatStore(store_path) as other:
            assert _shape(other.load_tree(chat_id)) == live_shape
        assert len(live_shape) == 6  # the question, three replies, the follow-up and its reply

    again = make_app(store_path, resume=True)
    async with again.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = again.chat_screen
        assert screen.chat.chat_id == chat_id
        assert _shape(screen.thread.tree) == live_shape
        assert [node.id for node in screen.thread.tree.active_path] == live_path
        assert screen.conversation.views[1].version_label == "3/3"
        screen.conversation.views[1].focus()
        await pilot.press("left")  # the second reply's branch, follow-up and all, is back
        await wait_idle(pilot)
        assert [m["content"] for m in screen.thread.messages][:3] == [
            "Name a colour.",
            replies[1],
            "Why that one?",
        ]
