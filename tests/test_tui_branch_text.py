"""Branch at a token with your own text: in the candidates pane, ``i`` asks
for the text; the reply keeps its tokens before that position, the typed text takes the token's
place, the model goes on from there, and the old reply stays as the other branch."""

from __future__ import annotations

import pytest
from tui_support import SIZE, make_app, wait_idle, wait_loaded, wait_until

from ezchat.chat.tree import Made
from ezchat.tui.dialogs import TextEditScreen

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


async def test_typed_text_branches_the_reply_at_a_token(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=14)
        screen = app.chat_screen
        screen.query_one("#input").insert("Describe the sea in one sentence.")
        await pilot.press("enter")
        await wait_idle(pilot)
        thread = screen.thread
        old_node = thread.node_at(1)
        old_text = old_node.content
        old_tokens = list(old_node.tokens)
        position = 3

        await pilot.press("f8")
        await pilot.press(*["left"] * (len(old_tokens) - 1 - position))
        await wait_until(pilot, lambda: screen._inspecting == (1, position), "the token")
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, TextEditScreen), "the text box")
        app.screen.query_one("#dialog-text").insert(" purple")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.generating or thread.node_at(1) is not old_node, "")
        await wait_idle(pilot)

        branch = thread.node_at(1)
        assert branch is not old_node and branch.parent is old_node.parent
        assert branch.origin.made is Made.BRANCH and branch.origin.at == position
        typed = thread.content_tokens(" purple")
        assert branch.tokens[: position + len(typed)] == old_tokens[:position] + typed
        assert branch.content.startswith(thread.model.detokenize(old_tokens[:position]) + " purple")
        # what the model wrote after the typed text is weighed; the typed tokens are not
        infos = branch.token_info
        assert infos is not None and len(infos) == len(branch.tokens)
        assert all(info is None for info in infos[position : position + len(typed)])
        generated = infos[position + len(typed) :]
        assert generated and all(info is not None for info in generated)
        # the old reply is kept, unchanged, as the other branch
        assert old_node.content == old_text and old_node.tokens == old_tokens
        assert old_node in thread.tree.siblings(branch)


async def test_escape_leaves_the_reply_as_it_was(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=8)
        screen = app.chat_screen
        screen.query_one("#input").insert("Name a fruit.")
        await pilot.press("enter")
        await wait_idle(pilot)
        node = screen.thread.node_at(1)
        await pilot.press("f8")
        await wait_until(pilot, lambda: screen._inspecting is not None, "the inspection")
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, TextEditScreen), "the text box")
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.generating and screen.thread.node_at(1) is node
        assert len(screen.thread.tree.siblings(node)) == 1
