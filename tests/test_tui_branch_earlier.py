"""Branch from a token of an earlier reply in the app: inspect that reply's
tokens, pick another candidate, and the reply goes on from there as a new sibling; the old
reply and the turn after it stay on their branch, in the store too."""

from __future__ import annotations

import pytest
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

from ezchat.chat.tree import Made
from ezchat.storage.store import ChatStore

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


async def test_a_candidate_branches_an_earlier_reply_and_keeps_the_turn_after_it(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=10)
        screen = app.chat_screen
        await send(pilot, "Name a colour.")
        await send(pilot, "Why that one?")
        thread = screen.thread
        old = thread.node_at(1)
        later = [n.content for n in thread.tree.active_path]
        assert len(later) == 4
        position = 2

        screen.conversation.view_at(1).focus()
        await pilot.press("t")  # the earlier reply's tokens, from its last one
        last = len(old.tokens) - 1
        await wait_until(pilot, lambda: screen._inspecting == (1, last), "the reply's tokens")
        await pilot.press(*["left"] * (last - position))
        await wait_until(pilot, lambda: screen._inspecting == (1, position), "token 3")
        await pilot.pause()
        pane = screen.candidates_pane
        second = pane.candidates[1].id
        assert second != old.tokens[position]
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: thread.node_at(1) is not old, "the branch")
        await wait_idle(pilot)

        branch = thread.node_at(1)
        assert branch.origin.made is Made.BRANCH and branch.origin.at == position
        assert branch.tokens[: position + 1] == old.tokens[:position] + [second]
        assert len(thread.messages) == 2  # the conversation follows the branch
        assert [v.index for v in screen.conversation.views] == [0, 1]
        assert screen.conversation.view_at(1).content == branch.content
        chat_id = screen.chat.chat_id
    with ChatStore(tmp_path / "chats.db") as store:
        stored = store.load_tree(chat_id)
        assert [n.content for n in stored.active_path] == [later[0], branch.content]
        # the old reply and the turn after it are kept on their branch
        stored.switch_to(stored.nodes[old.id])
        assert [n.content for n in stored.active_path] == later
