"""Growing N replies to one prompt at once (ezchat/engine/grow.py), on the real default model:
each sequence equals a one-sequence ``Model.start`` run with its seed, token for token; a stop
ends all N keeping their partials; every token keeps its probability and top 10."""

from __future__ import annotations

import dataclasses
import threading

import pytest

import ezchat as ez
from ezchat.engine.grow import TOP_K, grow_sampler, start_grow
from ezchat.errors import GenerationError

POEM = "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def warm() -> ez.SamplerSettings:
    return ez.SamplerSettings(temp=0.8, seed=7, max_len_tokens=32)


def _alone(model: ez.Model, prompt: str, sampler: ez.SamplerSettings) -> ez.GenerationResult:
    return model.start(prompt, sampler=sampler).run()


def test_one_greedy_sequence_equals_model_start(model: ez.Model, chat_prompt, greedy) -> None:
    alone = _alone(model, chat_prompt, greedy)
    growth = model.grow(chat_prompt, 1, greedy)
    streamed = [(seq, event.id) for seq, event in growth]
    [grown] = growth.results

    assert grown.tokens == alone.tokens and grown.text == alone.text
    assert grown.stop_reason == alone.stop_reason
    assert streamed == [(0, token) for token in alone.tokens]
    assert (
        growth.prompt_source == "copied"
    )  # the Model's cache held the prompt: copied, not evaluated
    assert growth.prompt_report.evaluated == 1  # only the last prompt token's logits read again


def test_four_greedy_sequences_are_four_equal_replies(model: ez.Model, chat_prompt, greedy) -> None:
    alone = _alone(model, chat_prompt, greedy)
    results = model.grow(chat_prompt, 4, greedy).run()
    assert [r.tokens for r in results] == [alone.tokens] * 4


def test_four_warm_sequences_each_equal_a_run_alone_with_its_seed(
    model: ez.Model, warm: ez.SamplerSettings
) -> None:
    growth = model.grow(POEM, 4, warm)
    by_sequence: dict[int, list[int]] = {i: [] for i in range(4)}
    for seq, event in growth:
        by_sequence[seq].append(event.id)
    results = growth.results

    assert len(results) == 4
    for i, grown in enumerate(results):
        alone = _alone(model, POEM, dataclasses.replace(warm, seed=warm.seed + i))
        assert grown.tokens == alone.tokens, f"sequence {i}"
        assert grown.text == alone.text and grown.stop_reason == alone.stop_reason
        assert by_sequence[i] == grown.tokens  # the stream tagged every token with its sequence
        assert len(growth.token_info[i]) == len(grown.tokens)
    assert len({tuple(r.tokens) for r in results}) > 1  # seed + i: the replies differ


def test_the_prompt_evaluated_in_the_batch_gives_the_same(model: ez.Model, warm) -> None:
    copied = start_grow(model, model.tokenize(POEM), 3, warm)
    copied_results = copied.run()
    model.reset_cache()
    evaluated = start_grow(model, model.tokenize(POEM), 3, warm, reuse_cache=False)
    evaluated_results = evaluated.run()

    assert (copied.prompt_source, evaluated.prompt_source) == ("copied", "evaluated")
    assert [r.tokens for r in evaluated_results] == [r.tokens for r in copied_results]
    assert model.cached_tokens == []  # the batch's own evaluation leaves the Model's cache alone


def test_a_stop_ends_all_sequences_keeping_their_partials(model: ez.Model, warm) -> None:
    long = dataclasses.replace(warm, max_len_tokens=200)
    growth = model.grow(POEM, 4, long)
    for seen, _ in enumerate(growth, start=1):
        if seen == 4 * 6:  # six steps in: stop, as the app's stop key does from its thread
            threading.Thread(target=growth.cancel).start()
    results = growth.results

    assert [r.stop_reason for r in results] == ["cancelled"] * 4
    for grown in results:
        assert 6 <= len(grown.tokens) < 200
        assert grown.text and grown.text == model.detokenize(grown.tokens)
    # each partial is the start of what that sequence grows when left alone
    for i, grown in enumerate(results):
        alone = _alone(model, POEM, grow_sampler(long, i).replace(max_len_tokens=len(grown.tokens)))
        assert alone.tokens == grown.tokens
    assert model.generate("Hi", sampler=warm.replace(max_len_tokens=2)) is not None  # not busy


def test_closing_the_stream_early_also_keeps_partials(model: ez.Model, warm) -> None:
    growth = model.grow(POEM, 2, warm)
    for seen, _ in enumerate(growth, start=1):
        if seen == 5:
            break
    partials = growth.results
    assert [r.stop_reason for r in partials] == ["cancelled"] * 2
    assert sum(len(r.tokens) for r in partials) == 5


def test_a_greedy_token_is_the_top_one_of_its_top_ten(model: ez.Model, chat_prompt, greedy) -> None:
    growth = model.grow(chat_prompt, 2, greedy)
    growth.run()
    for infos, result in zip(growth.token_info, growth.results, strict=True):
        assert [info.id for info in infos] == result.tokens
        for info in infos:
            assert len(info.top) == TOP_K
            assert info.top[0] == (info.id, info.probability)
            probabilities = [p for _, p in info.top]
            assert probabilities == sorted(probabilities, reverse=True)
            assert 0 < sum(probabilities) <= 1.0 + 1e-6


def test_a_sampled_token_outside_the_top_ten_keeps_its_own_probability(model: ez.Model) -> None:
    wild = ez.SamplerSettings(temp=3.0, top_k=0, top_p=1.0, min_p=0.0, seed=5, max_len_tokens=40)
    growth = model.grow(POEM, 2, wild)
    growth.run()
    infos = [info for sequence in growth.token_info for info in sequence]
    outside = [info for info in infos if info.id not in {t for t, _ in info.top}]
    assert outside, "temperature 3 over the whole vocabulary picks some token outside the top 10"
    for info in outside:
        assert 0 < info.probability <= info.top[-1][1]


def test_one_generation_at_a_time(model: ez.Model, greedy, chat_prompt) -> None:
    running = model.start(chat_prompt, sampler=greedy)
    with pytest.raises(GenerationError, match="already generating"):
        model.grow(chat_prompt, 2, greedy)
    running.run()
    growth = model.grow(chat_prompt, 2, greedy)
    with pytest.raises(GenerationError, match="already generating"):
        model.start(chat_prompt, sampler=greedy)
    growth.run()
    with pytest.raises(GenerationError, match="at least 1"):
        model.grow(chat_prompt, 0, greedy)


def test_the_second_architecture_evaluates_the_prompt_in_the_batch(
    second_model: ez.Model, greedy
) -> None:
    """Gemma 3's sliding-window cache is not the plain layout the copy knows: the prompt is
    evaluated in the batch instead, and the replies still equal ``Model.start``'s."""
    prompt = "The three primary colours are"
    short = greedy.replace(max_len_tokens=16)
    alone = second_model.start(prompt, sampler=short).run()
    growth = second_model.grow(prompt, 2, short)
    results = growth.run()
    assert growth.prompt_source == "evaluated"
    assert [r.tokens for r in results] == [alone.tokens] * 2
