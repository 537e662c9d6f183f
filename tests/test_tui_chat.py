"""The app on the real model: a reply streams in, stop keeps the partial reply, prefix and
continue shape the reply, and the input keeps its history."""

from __future__ import annotations

import pytest
from gates import at_token, holding
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

import ezchat as ez

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


async def test_reply_streams_in_and_matches_the_library(tmp_path, model):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=120)
        conversation = app.chat_screen.conversation
        with holding("token", at_token(6)) as gate:
            await send(pilot, "Name three colours.", wait=False)
            await wait_until(pilot, gate.held.is_set, "the reply held at its 6th token")
            # it streams: the view shows the reply's first tokens before the rest exist
            await wait_until(
                pilot,
                lambda: (
                    conversation.views[-1].role == "bot"
                    and conversation.views[-1].content == gate.text
                ),
                "the first tokens shown",
            )
            assert conversation.views[-1].streaming and gate.text
        await wait_idle(pilot)
        reply = app.chat_screen.thread.messages[-1]
        assert reply["role"] == "bot"
        assert reply["content"].startswith(gate.text) and len(reply["content"]) > len(gate.text)
        assert app.chat_screen.conversation.views[-1].content == reply["content"]
        assert [v.role for v in app.chat_screen.conversation.views] == [
            m["role"] for m in app.chat_screen.thread.messages
        ]

    # the same greedy reply the library gives for the same conversation
    sampler = ez.samplers.load("GreedyDecoding")
    sampler.max_len_tokens = 120
    expected = ez.Thread(model, "auto", sampler).send("Name three colours.")
    assert reply["content"] == expected


async def test_stop_keeps_the_partial_reply(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=400)
        with holding("token", at_token(12)) as gate:
            await send(pilot, "Write a long story about a dragon.", wait=False)
            await wait_until(pilot, gate.held.is_set, "the reply held at its 12th token")
            await pilot.press("escape")  # the stop is seen before the 13th token
        await wait_idle(pilot)
        result = app.chat_screen.thread.last_result
        assert result.stop_reason == "cancelled"
        assert result.n_generated == 12
        reply = app.chat_screen.thread.messages[-1]
        assert reply["role"] == "bot" and reply["content"].strip()
        assert app.chat_screen.conversation.views[-1].content == reply["content"]
        # the app goes on: the next message gets a reply
        app.chat_screen.thread.sampler.max_len_tokens = 8
        await send(pilot, "Thanks.")
        assert [m["role"] for m in app.chat_screen.thread.messages][-2:] == ["user", "bot"]


async def test_prefix_starts_the_reply_and_continue_extends_it(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        await send(pilot, "What is the capital of France?")
        await pilot.press("ctrl+b")
        assert app.query_one("#input").prefix_mode
        app.chat_screen.thread.sampler.max_len_tokens = (
            2  # cut short, so there is something to continue
        )
        await send(pilot, "The answer, in one word, is")
        assert app.chat_screen.thread.last_result.stop_reason == "length"
        reply = app.chat_screen.thread.messages[-1]
        assert reply["role"] == "bot"
        assert reply["content"].startswith("The answer, in one word, is")
        assert len(reply["content"]) > len("The answer, in one word, is")
        assert not app.query_one("#input").prefix_mode

        before = reply["content"]
        app.chat_screen.thread.sampler.max_len_tokens = 12
        count = len(app.chat_screen.thread.messages)
        await pilot.press("ctrl+g")
        await wait_idle(pilot)
        assert len(app.chat_screen.thread.messages) == count
        after = app.chat_screen.thread.messages[-1]["content"]
        assert after.startswith(before) and len(after) > len(before)
        assert app.chat_screen.conversation.views[-1].content == after


async def test_input_history_and_newline(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=4)
        box = app.query_one("#input")
        await send(pilot, "first")
        await send(pilot, "second")
        await pilot.press("up")
        assert box.text == "second"
        await pilot.press("up")
        assert box.text == "first"
        await pilot.press("down", "down")
        assert box.text == ""
        await pilot.press("a", "ctrl+j", "b")
        assert box.text == "a\nb"
