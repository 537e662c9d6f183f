"""Reroll keeps every version, the candidates pane shows the model's top-k, a picked
candidate regenerates the reply from that token, and the context pane shows the Thread's
numbers."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

from ezchat.session import ChatOptions
from ezchat.tui import EzChatApp

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


async def test_reroll_keeps_versions_browsable(tmp_path):
    # a non-greedy preset with a fixed seed: the reroll differs, and the test repeats
    app = make_app(tmp_path / "chats.db", sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=16)
        app.chat_screen.thread.sampler.seed = 77
        await send(pilot, "Tell me something about cats.")
        first = app.chat_screen.thread.messages[-1]["content"]
        prompt_tokens = app.chat_screen.thread.last_result.prompt.prompt_tokens

        await pilot.press("ctrl+r")
        await wait_idle(pilot)
        second = app.chat_screen.thread.messages[-1]["content"]
        assert second != first
        # the history was in the cache: at most the last prompt token is evaluated again
        report = app.chat_screen.thread.last_result.prompt
        assert report.evaluated <= 1 and report.reused >= prompt_tokens - 1
        chat = app.chat_screen.chat
        assert chat.versions(-1) == [first, second] and chat.label(-1) == "2/2"
        view = app.chat_screen.conversation.views[-1]
        assert view.version_label == "2/2" and view.content == second
        assert len(app.chat_screen.thread.messages) == 2

        view.focus()
        await pilot.press("left")
        assert app.chat_screen.thread.messages[-1]["content"] == first
        assert view.content == first and view.version_label == "1/2"
        await pilot.press("left")  # already the first: stays
        assert view.version_label == "1/2"
        await pilot.press("right")
        assert (
            app.chat_screen.thread.messages[-1]["content"] == second and view.version_label == "2/2"
        )


async def test_candidates_pane_shows_k_rows_most_likely_first(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        await send(pilot, "What is the capital of France?")
        pane = app.chat_screen.candidates_pane
        # followed the reply while it was written
        assert len(pane.candidates) == 10

        await pilot.press("f8")
        tokens = app.chat_screen.thread.reply_tokens(app.chat_screen.thread.messages[-1])
        await wait_until(pilot, lambda: pane.chosen == tokens[-1] and pane.candidates, "candidates")
        probabilities = [c.probability for c in pane.candidates]
        assert len(probabilities) == 10
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0001
        # greedy: the token the reply has there is the most likely one
        assert pane.candidates[0].id == tokens[-1]
        assert pane.query_one(OptionList).option_count == 10
        # the same numbers the library gives
        expected = app.chat_screen.thread.candidates_at(1, len(tokens) - 1, 10)
        assert [c.id for c in pane.candidates] == [c.id for c in expected]


async def test_picking_a_candidate_regenerates_from_that_token(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=16)
        await send(pilot, "Describe the sea in one sentence.")
        old_text = app.chat_screen.thread.messages[-1]["content"]
        old_tokens = app.chat_screen.thread.reply_tokens(app.chat_screen.thread.messages[-1])
        assert len(old_tokens) >= 6
        pane = app.chat_screen.candidates_pane

        await pilot.press("f8")
        await pilot.press("left", "left", "left")
        position = len(old_tokens) - 4
        await wait_until(
            pilot,
            lambda: (
                app.chat_screen._inspecting == (1, position) and pane.chosen == old_tokens[position]
            ),
            "candidates at the chosen position",
        )
        picked = pane.candidates[1]
        await pilot.press("down", "enter")
        await wait_idle(pilot)

        message = app.chat_screen.thread.messages[-1]
        new_tokens = app.chat_screen.thread.reply_tokens(message)
        assert new_tokens[: position + 1] == old_tokens[:position] + [picked.id]
        assert message["content"].startswith(
            app.chat_screen.thread.model.detokenize(new_tokens[: position + 1])
        )
        assert app.chat_screen.chat.versions(-1) == [old_text, message["content"]]
        assert app.chat_screen.conversation.views[-1].content == message["content"]


async def test_context_pane_shows_the_thread_numbers(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        pane = app.query_one("#context")
        assert pane.used == app.chat_screen.thread.context_stats().in_context
        await send(pilot, "Hello there!")
        await send(pilot, "How are you?")
        stats = app.chat_screen.thread.context_stats()
        # nothing left out yet: the context holds the whole history
        assert stats.left_out == 0 and stats.in_context == app.chat_screen.thread.len_messages()
        assert pane.used == stats.in_context and pane.limit == stats.context_length == 2048
        text = str(pane.render())
        assert f"{stats.in_context} / 2048 tokens" in text
        assert (
            f"History {len(app.chat_screen.thread.messages)} messages · {stats.history_tokens} tokens"
            in text
        )
        assert "Left out" not in text
        assert "auto, the model's own chat template" in text
        assert f"Last reply {app.chat_screen.thread.last_result.n_generated} tokens" in text
        assert "Q4_1" in text and "Native context 8192" in text


async def test_a_full_context_drops_old_messages_and_says_so(tmp_path):
    options = ChatOptions(sampler="GreedyDecoding", context_length=256, seed=1234)
    app = EzChatApp(options, store_path=tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        for turn in range(12):
            await send(pilot, f"Turn {turn}: name a fruit and its colour.")
            if app.chat_screen.thread.last_plan.dropped:
                break
        plan, report = app.chat_screen.thread.last_plan, app.chat_screen.thread.last_result.prompt
        assert plan.dropped > 0, "the chat never outgrew the context"
        assert report.shifted > 0  # the cached tail slid into place instead of being re-read
        pane = app.query_one("#context")
        text = str(pane.render())
        stats = pane.stats
        assert stats.left_out > 0 and stats.in_context <= 256 and stats.fraction <= 1.0
        assert stats.history_tokens == app.chat_screen.thread.len_messages() > stats.in_context
        assert f"Left out: the {stats.left_out} oldest of {stats.messages} messages" in text
        assert f"{stats.in_context} / 256 tokens" in text
        assert f"({report.shifted} shifted)" in text
        assert "cannot shift" not in text
        # the chat itself keeps every message, and the conversation goes on
        assert len(app.chat_screen.thread.messages) == 2 * (turn + 1)
        await send(pilot, "One more fruit?")
        assert (
            app.chat_screen.thread.messages[-1]["role"] == "bot"
            and app.chat_screen.thread.messages[-1]["content"]
        )
