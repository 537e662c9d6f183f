"""Multi-turn conversations: ChatRunner.chat and ConversationHandler (real model, greedy)."""

from __future__ import annotations

import pytest

import ezchat as ez
from ezchat.runners import ChatRunner, ConversationHandler


@pytest.fixture
def runner(model: ez.Model, greedy: ez.SamplerSettings) -> ChatRunner:
    return ChatRunner(
        model,
        "You are a friendly assistant.",
        sampler=greedy.replace(max_len_tokens=24),
        cache=False,
    )


@pytest.mark.slow
def test_each_turn_sees_the_earlier_turns(runner: ChatRunner, model: ez.Model) -> None:
    turns = ["My name is Bob and I like green apples.", "What is my name?", "What fruit do I like?"]
    replies = runner.chat(turns)
    assert len(replies) == 3 and all(isinstance(reply, str) and reply for reply in replies)
    responses = runner.last_responses

    # The same conversation held in a core Thread, with the runner's replies as the bot turns.
    thread = ez.Thread(model, "auto", runner.sampler)
    thread.set_system_prompt("You are a friendly assistant.")
    for turn, reply, response in zip(turns, replies, responses, strict=True):
        thread.add_message("user", turn)
        assert response.prompt_tokens == len(thread.plan_prompt().tokens)
        model.reset_cache()
        assert thread.start_reply().run() == reply
        thread.messages[-1] = thread.create_message("bot", reply)
    assert responses[2].prompt_tokens > responses[1].prompt_tokens + responses[1].completion_tokens

    again = runner.chat(turns)  # a conversation starts fresh every time
    assert again == replies


def test_conversation_handler_renders_every_turn_and_keeps_ids(runner: ChatRunner) -> None:
    handler = ConversationHandler(
        runner,
        system_prompt="You are a helpful AI that only speaks like a pirate.",
        user_prompts=["What is key1?", "Did you get key1 as context?"],
        contexts=[{"key1": "value1"}, {"key1": "value1"}],
        meta_data=[{"meta": "data1"}, {"meta": "data2"}],
        template_name="default",
        conversation_id=7,
    )
    responses = handler.run()
    assert len(responses) == 2 and all(response.ok for response in responses)
    assert [r.prompt.conversation_id for r in responses] == [7, 7]
    assert [r.prompt.meta_data for r in responses] == [{"meta": "data1"}, {"meta": "data2"}]
    assert responses[0].prompt.reformated == "What is key1?\n\nProvided context:\nkey1: value1"
    assert responses[1].prompt_tokens > responses[0].prompt_tokens + responses[0].completion_tokens
    assert all(r.prompt.sys_prompt.startswith("You are a helpful AI") for r in responses)


def test_a_turn_too_long_is_skipped_and_the_conversation_goes_on(runner: ChatRunner) -> None:
    replies = runner.chat(["Hello!", "word " * 2500, "How are you?"])
    assert replies[0] and replies[1] is None and replies[2]
    assert "context holds 2048" in runner.last_responses[1].skipped
    # the skipped turn is not part of what the third turn saw
    first, _, third = runner.last_responses
    assert third.prompt_tokens < first.prompt_tokens + first.completion_tokens + 40


def test_typed_turns(runner: ChatRunner) -> None:
    values = runner.chat(["I am 30 years old.", "How old am I?"], output_type={"age": "int"})
    assert all(type(value["age"]) is int for value in values)


def test_raw_templates_cannot_hold_a_conversation(runner: ChatRunner) -> None:
    handler = ConversationHandler(runner, None, ["Hi"], template_name="chatml.raw")
    with pytest.raises(ez.EzChatError, match="raw templates"):
        handler.run()
