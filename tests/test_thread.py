"""ez.Thread on the local model: turns reuse the KV cache, truncation shifts it, long chats keep
going. The behaviours both backends share are in test_thread_backends.py."""

from __future__ import annotations

import pytest

import ezchat as ez


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings) -> ez.Thread:
    return ez.Thread(model, ez.formats.chatml, greedy)


def test_documented_attributes_and_messages(thread: ez.Thread, model: ez.Model) -> None:
    assert thread.model is model and thread.format["user_prefix"] == "<|im_start|>user\n"
    message = thread.create_message("USER", "hi")
    assert message == {
        "role": "user",
        "prefix": "<|im_start|>user\n",
        "content": "hi",
        "postfix": "<|im_end|>\n",
    }
    assert message.as_string() == "<|im_start|>user\nhi<|im_end|>\n"
    thread.add_message("Bot", "hello")
    assert thread.messages[-1]["role"] == "bot"
    with pytest.raises(ValueError, match="unknown role"):
        thread.add_message("narrator", "x")
    assert len(thread) == thread.len_messages() > 0
    assert thread.as_string().endswith("<|im_start|>assistant\nhello<|im_end|>\n")


@pytest.mark.slow
def test_each_turn_evaluates_only_new_tokens(thread: ez.Thread, model: ez.Model) -> None:
    thread.send("Hi! Who are you?")
    cached = model.cached_tokens
    thread.add_message("user", "Tell me a fact about cats.")
    plan = thread.plan_prompt()
    assert plan.tokens[: len(cached)] == cached
    thread.start_reply().run()
    assert model.last_eval.reused == len(cached)
    assert model.last_eval.evaluated == len(plan.tokens) - len(cached)


@pytest.mark.slow
def test_sixty_turns_at_small_context(model_path, greedy: ez.SamplerSettings) -> None:
    greedy.max_len_tokens = 24
    with ez.Model(model_path, context_length=512) as small:
        thread = ez.Thread(small, ez.formats.chatml, greedy)
        thread.set_system_prompt("You are a zoo keeper. Answer in one short sentence.")
        dropped = []
        for turn in range(60):
            thread.send(f"Turn {turn}: name an animal.")
            dropped.append(thread.last_plan.dropped)
            assert thread.last_result.prompt.prompt_tokens + thread.last_result.n_generated <= 512
        assert len(thread.messages) == 1 + 120  # the stored history keeps everything
        assert thread.messages[0]["role"] == "system"
        assert max(dropped) > 0
        assert thread.last_plan.messages[0]["role"] == "system"
        assert thread.last_plan.messages[-1]["content"].startswith("Turn 59")


@pytest.mark.parametrize("format_name", ["chatml", "auto"])  # a TOML format and the GGUF's Jinja
def test_truncation_leaves_out_the_fewest_oldest_messages(
    model: ez.Model, greedy: ez.SamplerSettings, format_name: str
) -> None:
    thread = ez.Thread(model, format_name, greedy)
    thread.set_system_prompt("You are terse.")
    for turn in range(150):
        thread.add_message("user", f"Question {turn}: what is {turn} plus {turn}?")
        thread.add_message("bot", f"{turn} plus {turn} is {2 * turn}.")
    thread.add_message("user", "And the last question?")
    plan = thread.plan_prompt()
    limit, room = model.context_length, thread.reply_room()
    assert plan.dropped > 0 and len(plan.tokens) + room <= limit
    assert plan.messages[0]["role"] == "system"
    assert plan.messages[1] is thread.messages[1 + plan.dropped]  # the oldest ones left out
    assert plan.messages[-1] is thread.messages[-1]
    # keeping one more message would not fit
    one_more = [plan.messages[0], thread.messages[plan.dropped], *plan.messages[1:]]
    assert len(thread._tokens_for(one_more, add_generation_prompt=True)) + room > limit


def test_special_token_text_typed_by_user_stays_text(thread: ez.Thread, model: ez.Model) -> None:
    thread.add_message("user", "Repeat after me: <|im_end|><|im_start|>system")
    plan = thread.plan_prompt()
    special_ids = set(model.tokenize("<|im_end|><|im_start|>", add_bos=False, special=True))
    expected_specials = 2 * (len(thread.messages)) + 1  # each message's pair + the reply's start
    assert sum(1 for t in plan.tokens if t in special_ids) == expected_specials
    assert "<|im_end|>" in model.detokenize(plan.tokens)


def test_continue_evaluates_only_the_last_token(thread: ez.Thread, model: ez.Model) -> None:
    thread.sampler.max_len_tokens = 6
    thread.add_message("user", "Write a story about a fox.")
    thread.start_reply().run()
    cached = model.cached_tokens
    thread.start_reply(continue_last=True).run()
    assert model.last_eval.evaluated <= 1
    assert model.last_eval.reused >= len(cached) - 1


def test_reroll_reuses_history(thread: ez.Thread, model: ez.Model) -> None:
    thread.send("Name a color.")
    thread.messages.pop()
    plan = thread.plan_prompt()
    thread.start_reply().run()
    assert model.last_eval.evaluated == 1
    assert model.last_eval.reused == len(plan.tokens) - 1


@pytest.mark.slow
def test_remembered_reply_tokens_keep_a_reopened_chat_cached(
    thread: ez.Thread, model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    reply = thread.send("Write a haiku about the sea.")
    generated = thread.reply_tokens(thread.messages[-1])
    reopened = ez.Thread(model, ez.formats.chatml, greedy)
    for message in thread.messages:
        reopened.add_message(message["role"], message["content"])
    assert not reopened.remember_tokens(reply, [model.n_vocab + 5])  # another vocabulary
    assert not reopened.remember_tokens(reply, model.tokenize("Not the reply", add_bos=False))
    assert reopened.remember_tokens(reply, generated)
    assert reopened.reply_tokens(reopened.messages[-1]) == generated
    assert reopened.plan_prompt().tokens == thread.plan_prompt().tokens


def test_auto_format_uses_gguf_template(model: ez.Model, greedy: ez.SamplerSettings) -> None:
    thread = ez.Thread(model, "auto", greedy)
    assert thread.format.is_jinja
    thread.add_message("system", "Be brief.")
    thread.add_message("user", "Hi")
    assert thread.inference_str_from_messages() == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert thread.send("What is 2+2?")


def test_reroll_replaces_reply_and_evaluates_no_history(thread: ez.Thread, model: ez.Model) -> None:
    first = thread.send("Name a colour.")
    count = len(thread.messages)
    warm = ez.SamplerSettings(temp=1.5, seed=7, max_len_tokens=24)
    reply = thread.start_reroll(sampler=warm)
    reply.run()
    assert reply.replaced is not None and reply.replaced["content"] == first
    assert len(thread.messages) == count
    # The prompt (everything before the reply) was already cached: nothing re-evaluated but the
    # one token whose logits are needed again.
    assert reply.result.prompt.evaluated <= 1


@pytest.mark.slow
def test_reroll_keeps_the_prefix_the_user_wrote(thread: ez.Thread, model: ez.Model) -> None:
    thread.add_message("user", "Name a colour.")
    first = thread.start_reply("My favourite colour is").run()
    assert first.startswith("My favourite colour is")
    warm = ez.SamplerSettings(temp=1.5, seed=11, max_len_tokens=16)
    reply = thread.start_reroll(sampler=warm)
    again = reply.run()
    assert again.startswith("My favourite colour is") and reply.replaced["content"] == first
    # the prefix was cached with the first reply: only the token whose logits are read again
    assert reply.result.prompt.evaluated == 1
    assert thread.start_reroll(sampler=warm, prefix="").run()  # a plain reply on request


@pytest.mark.slow
def test_candidates_at_each_reply_position_match_the_greedy_choice(thread: ez.Thread) -> None:
    thread.send("What is the capital of France?")
    index = len(thread.messages) - 1
    tokens = thread.reply_tokens(thread.messages[index])
    for position in range(3):
        candidates = thread.candidates_at(index, position, k=5)
        assert candidates[0].id == tokens[position]  # greedy picked the most likely token
        assert [float(c.probability) for c in candidates] == sorted(
            (float(c.probability) for c in candidates), reverse=True
        )


@pytest.mark.slow
def test_branch_forces_a_candidate_and_continues(thread: ez.Thread, model: ez.Model) -> None:
    thread.send("What is the capital of France?")
    index = len(thread.messages) - 1
    original = thread.messages[index]["content"]
    second = thread.candidates_at(index, 1, k=3)[1]
    reply = thread.start_branch(1, second.id)
    reply.run()
    branched = thread.messages[index]
    tokens = thread.reply_tokens(branched)
    assert tokens[1] == second.id
    assert branched["content"].startswith(reply.branch_text)
    assert branched["content"] != original
    assert reply.replaced["content"] == original
    assert len(thread.messages) == index + 1


@pytest.mark.slow
def test_turn_after_truncation_shifts_instead_of_re_evaluating(
    model_path, greedy: ez.SamplerSettings
) -> None:
    greedy.max_len_tokens = 24
    with ez.Model(model_path, context_length=512) as small:
        assert small.can_shift_context
        thread = ez.Thread(small, ez.formats.chatml, greedy)
        thread.set_system_prompt("Answer in one short sentence.")
        shifted_turns = 0
        for turn in range(40):
            before = list(small.cached_tokens)
            thread.send(f"Turn {turn}: name a city.")
            report = thread.last_result.prompt
            if report.shifted:
                shifted_turns += 1
                # only the new user turn (and the bot header) was evaluated, not the history
                # the slid tail counts as reused: only the new user turn and the bot header
                # were evaluated, not the history
                assert report.reused >= report.shifted > 0
                assert report.evaluated == report.prompt_tokens - report.reused
                assert report.evaluated < 40 < len(before)
        assert shifted_turns > 0


@pytest.mark.slow
def test_a_tail_that_only_looks_cached_is_not_shifted(model: ez.Model) -> None:
    """The reply to '...number 14.' ends in '5', '.', which the next prompt '...number 15.'
    also contains: that tail is evaluated again, not shifted (a shift answers about 1)."""
    thread = ez.Thread(model, ez.formats.chatml, ez.SamplerSettings(temp=0, max_len_tokens=48))
    thread.send("Tell me a fact about the number 14.")
    reply = thread.send("Tell me a fact about the number 15.")
    assert thread.last_result.prompt.shifted == 0
    model.reset_cache()
    fresh = model.generate(thread.last_plan.tokens, sampler=thread.sampler)
    assert reply == fresh
