"""A second architecture: Gemma 3 270M base (sliding-window attention over 512 tokens, no chat
template, a 262k vocabulary), where SmolLM2 is llama with ChatML. A long chat at a 1024-token
context, the app started on it, candidates, and the format ``auto`` picks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_repl import ENTER, chat
from tui_support import SIZE, send, wait_loaded

import ezchat as ez
from ezchat.chat.context_stats import ContextStats
from ezchat.session import ChatOptions
from ezchat.tui import EzChatApp

GEMMA3_AUTO = "gemma3, from the model's architecture (gemma3); the file has no chat template"
# Long turns and short replies: the chat fills the context mostly by prompt evaluation,
# which is fast, rather than by generation, which is not on a shared CPU.
TOPIC = (
    "Tell me more about the history of the city, its rivers, its bridges and the people who "
    "lived there over the centuries: the markets by the water, the guilds and their halls, "
    "the floods that came every spring, the fires that burned the old town, the churches "
    "built again in stone, the schools, the printers, the first railway station, the "
    "factories along the canal, the wars, the years of rebuilding, and the city today."
)
REPLY_TOKENS = 12


def test_the_second_model_differs_where_it_matters(second_model: ez.Model) -> None:
    gguf = second_model.gguf
    assert gguf.architecture == "gemma3" and gguf.chat_template is None
    assert gguf.arch_value("attention.sliding_window") == 512 < second_model.context_length


def long_chat(thread: ez.Thread, turns_after_the_first_drop: int = 2) -> list[ContextStats]:
    """Send turns until the prompt has left messages out for a few turns; the stats after each."""
    seen: list[ContextStats] = []
    last_turn = None
    for turn in range(80):
        thread.add_message("user", f"Turn {turn}. {TOPIC}")
        thread.start_reply().run()
        seen.append(thread.context_stats())
        if thread.last_plan.dropped and last_turn is None:
            last_turn = turn + turns_after_the_first_drop
        if last_turn is not None and turn >= last_turn:
            return seen
    raise AssertionError("the chat never outgrew the context")


def check_stats(thread: ez.Thread, seen: list[ContextStats]) -> None:
    """Never over 100%; the left-out count is the prompt's; the history is counted apart."""
    limit = thread.model.context_length
    for stats in seen:
        assert 0 < stats.in_context <= stats.context_length == limit
        assert 0 < stats.fraction <= 1.0
    final = seen[-1]
    assert final.left_out > 0 and final.left_out == thread.plan_prompt().dropped
    assert final.messages == len(thread.messages)
    assert final.history_tokens == thread.len_messages() > limit
    left_out = [m for m in thread.messages if not any(m is k for k in thread.last_plan.messages)]
    assert len(left_out) == final.left_out
    assert all(m["role"] != "system" for m in left_out)


@pytest.mark.slow
def test_a_long_chat_at_a_small_context(second_model: ez.Model, second_model_path: Path, greedy):
    greedy.max_len_tokens = REPLY_TOKENS
    thread = ez.Thread(second_model, "auto", greedy)
    seen = long_chat(thread)
    reply_plan = thread.last_plan  # the prompt the last reply ran on
    check_stats(thread, seen)
    assert [line.split(" tokens")[0] for line in printed_stats(thread)][:1] == [
        f"{seen[-1].in_context} / 1024"
    ]
    # the last reply, on a prompt the cache reached by leaving messages out, is what a fresh
    # model gives for the same prompt tokens
    fresh = ez.Model(second_model_path, context_length=1024, seed=1234)
    try:
        generation = fresh.start(reply_plan.tokens, list(thread.format.stops), greedy)
        for _ in generation:
            pass
        assert generation.result.tokens == thread.last_result.tokens
    finally:
        fresh.unload()


def printed_stats(thread: ez.Thread) -> list[str]:
    out = io.StringIO()
    thread.print_stats(file=out)
    return out.getvalue().splitlines()


@pytest.mark.slow
def test_stats_on_the_default_model_at_a_small_context(model_path: Path, greedy) -> None:
    small = ez.Model(model_path, context_length=512, seed=1234)
    greedy.max_len_tokens = REPLY_TOKENS
    try:
        thread = ez.Thread(small, "auto", greedy)
        seen = long_chat(thread, turns_after_the_first_drop=2)
        check_stats(thread, seen)
        final = seen[-1]
        assert printed_stats(thread) == [
            f"{final.in_context} / 512 tokens in the context ({final.fraction:.0%})",
            f"{final.left_out} of {final.messages} messages left out of the context",
            f"history: {final.messages} messages, {final.history_tokens} tokens",
        ]
    finally:
        small.unload()


def test_candidates_on_the_second_model(second_model: ez.Model, greedy) -> None:
    thread = ez.Thread(second_model, "auto", greedy)
    thread.add_message("user", "Name a colour.")
    reply = thread.start_reply(candidates=5)
    events = list(reply)
    assert events, "the model wrote nothing"
    for event in events:
        probabilities = [c.probability for c in event.candidates]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0 + 1e-6
        assert event.candidates[0].id == event.id  # greedy takes the likeliest token
    # asked again later, through the cache, the candidates of a token are the same
    index = len(thread.messages) - 1
    position = min(3, len(events) - 1)
    again = thread.candidates_at(index, position, 5)
    assert [c.id for c in again] == [c.id for c in events[position].candidates]
    assert again[0].probability == pytest.approx(
        events[position].candidates[0].probability, rel=1e-3
    )


@pytest.mark.slow
async def test_the_app_on_the_second_model(tmp_path: Path, second_model_path: Path) -> None:
    options = ChatOptions(
        model=str(second_model_path), sampler="GreedyDecoding", context_length=1024, seed=1234
    )
    app = EzChatApp(options, store_path=tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=16)
        assert app.chat_screen.thread.format.name == "gemma3"
        await send(pilot, "Hello there!")
        reply = app.chat_screen.thread.messages[-1]
        assert reply["role"] == "bot" and reply["content"]
        assert app.chat_screen.conversation.views[-1].content == reply["content"]
        pane = app.query_one("#context")
        text = str(pane.render())
        assert GEMMA3_AUTO in " ".join(text.split())  # the pane wraps long lines
        assert f"{pane.used} / 1024 tokens" in text and pane.used == pane.stats.in_context
        # gemma3's markers are Gemma's own tokens: no warning
        assert not [n for n in app._notifications if n.title == "Prompt format"]
        # chatml's are not: the app says so in one line, the pane too
        app.chat_screen.thread.set_format("chatml")
        app.chat_screen._warn_about_format()
        await pilot.pause()
        warnings = [n.message for n in app._notifications if n.title == "Prompt format"]
        assert len(warnings) == 1 and "\n" not in warnings[0]
        assert "<|im_start|>, <|im_end|> are not special tokens" in warnings[0]


def test_the_repl_says_which_format_and_warns(second_model: ez.Model, greedy) -> None:
    thread = ez.Thread(second_model, "auto", greedy)
    out = chat(thread, f"!stats{ENTER}!format chatml{ENTER}!format gemma3{ENTER}")
    lines = out.splitlines()
    assert f"(prompt format {GEMMA3_AUTO})" in lines  # when the chat starts
    assert f"format {GEMMA3_AUTO}; sampler {greedy.name}" in lines  # in !stats
    assert thread.context_stats().lines()[0] in lines
    warnings = [line for line in lines if line.startswith("warning: format chatml:")]
    assert len(warnings) == 1 and "such as gemma3" in warnings[0]
    assert lines.count("(prompt format gemma3)") == 1  # asked for by name: no reason needed
