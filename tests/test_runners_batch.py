"""BatchRunner against the real model, greedy: collections through templates, batched decoding
equal to one-by-one decoding, the response cache, skipped prompts, progress and summary."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import ezchat as ez
from ezchat.engine.batched import shared_prefix
from ezchat.runners import (
    BasicModelRunner,
    BatchRunner,
    ChatRunner,
    PromptCollection,
    ResponseCache,
    run_batched,
)
from ezchat.settings import paths


@pytest.fixture
def sampler(greedy: ez.SamplerSettings) -> ez.SamplerSettings:
    return greedy.replace(max_len_tokens=24)


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False), buffer


def _collection(count: int) -> PromptCollection:
    return PromptCollection.create_prompts(
        sys_prompts="Answer in one short sentence.",
        user_prompts=[f"Tell me a fact about the number {i}." for i in range(count)],
        contexts=[{"hint": f"{i} is {'even' if i % 2 == 0 else 'odd'}"} for i in range(count)],
        meta_datas=[{"row": i, "tag": f"t{i % 3}"} for i in range(count)],
        template_name="default",
    )


@pytest.mark.slow
def test_twenty_prompts_through_a_template(model: ez.Model, sampler) -> None:
    console, buffer = _console()
    runner = BatchRunner(model, sampler, cache=False, console=console)
    collection = _collection(20)
    responses = runner.run(collection)

    assert len(responses) == 20
    assert [r.prompt for r in responses] == list(collection)  # in the collection's order
    for i, response in enumerate(responses):
        assert response.ok and response.text
        assert response.prompt.meta_data == {"row": i, "tag": f"t{i % 3}"}
        assert response.prompt.reformated.endswith(
            f"Provided context:\nhint: {response.prompt.context['hint']}"
        )
        assert response.prompt_tokens > 20 and 0 < response.completion_tokens <= 24
        assert response.stop_reason in ("stop_token", "length")
        assert response.seconds > 0 and not response.cached
        data = response.response_data
        assert (
            data["metadata"] == {"row": i, "tag": f"t{i % 3}"} and data["response"] == response.text
        )
    assert len({r.request_id for r in responses}) == 20
    assert runner.last_stats.generated_tokens == sum(r.completion_tokens for r in responses)
    progress = buffer.getvalue()
    assert "Processed prompts" in progress and "20/20" in progress and "tok/s" in progress

    console, buffer = _console()
    responses.print_response_summary(console)
    summary = buffer.getvalue()
    for response in responses:
        assert response.prompt.id in summary and response.prompt.user_prompt in summary
    assert "Conversation ID: 19" in summary and "{'row': 7, 'tag': 't1'}" in summary
    assert summary.rstrip().endswith(
        "20 prompts: 0 skipped, 0 errors, 0 cached; "
        f"{responses.totals()['prompt_tokens']} tokens in, "
        f"{responses.totals()['completion_tokens']} out"
    )


@pytest.mark.slow
def test_batched_outputs_equal_one_by_one_outputs(model: ez.Model, sampler) -> None:
    runner = BatchRunner(model, sampler, cache=False, progress=False)
    distinct = [
        "Hi.",
        "What is the capital of France?",
        "Write a haiku about the sea.",
        "List three animals that live in the ocean and say why they are interesting.",
        "2+2=",
        "Translate 'good morning' to Spanish.",
        "Who wrote Hamlet?",
        "Explain gravity to a child in a long and detailed way, please, with examples.",
    ]
    collection = PromptCollection.create_prompts(None, distinct * 2, template_name="plain")
    jobs = runner.make_jobs(collection, None)
    one_by_one = []
    for job in jobs[: len(distinct)]:
        model.reset_cache()  # each prompt from scratch, as in its own batch sequence
        one_by_one.append(model.complete(job.request.tokens, job.request.stops, sampler))
    one_by_one *= 2

    for parallel in (16, 5):  # 5 slots for 16 prompts: finished slots take the next prompt
        runner.parallel = parallel
        batched = runner.run(collection)
        assert [r.text for r in batched] == [r.text for r in one_by_one]
        assert [r.completion_tokens for r in batched] == [r.n_generated for r in one_by_one]
        assert [r.stop_reason for r in batched] == [r.stop_reason for r in one_by_one]

    results = run_batched(model, [job.request for job in jobs], parallel=16)
    assert [r.tokens for r in results] == [r.tokens for r in one_by_one]


@pytest.mark.slow
def test_a_shared_system_prompt_is_evaluated_once(model: ez.Model, sampler) -> None:
    """Prompts that start alike (a long system prompt, few-shot examples) share one evaluation
    of what they have in common, copied into every slot, and reply as if each ran alone."""
    rules = " ".join(f"Rule {i}: answer briefly and never invent facts." for i in range(12))
    questions = ["Name a fruit.", "What is 3+4?", "Say hello in French.", "Name a planet."]
    collection = PromptCollection.create_prompts(
        sys_prompts=f"You are careful. {rules}", user_prompts=questions * 2
    )
    runner = BatchRunner(model, sampler, cache=False, progress=False)
    requests = [job.request for job in runner.make_jobs(collection, None)]
    shared = shared_prefix(requests)
    assert len(shared) > 100  # the system prompt and the template around it

    alone = []
    for request in requests[: len(questions)]:
        model.reset_cache()
        alone.append(model.complete(request.tokens, request.stops, request.sampler))
    alone *= 2

    for parallel in (8, 3):  # with 3 slots a finished slot keeps the prefix for the next prompt
        evaluated: list[int] = []

        def count(prompt_tokens: int, _new: int, evaluated: list[int] = evaluated) -> None:
            evaluated.append(prompt_tokens)

        results = run_batched(model, requests, parallel, on_step=count)
        assert [r.tokens for r in results] == [r.tokens for r in alone]
        assert [r.prompt.reused for r in results] == [len(shared)] * len(requests)
        own = [len(r.tokens) - len(shared) for r in requests]
        assert [r.prompt.evaluated for r in results] == own
        assert sum(evaluated) == len(shared) + sum(own)  # the prefix once, not once a prompt


@pytest.mark.slow
def test_second_run_comes_from_the_cache(model: ez.Model, sampler) -> None:
    collection = _collection(6)
    runner = BatchRunner(model, sampler, progress=False)
    assert runner.cache is not None and runner.cache.path.parent == paths.cache_dir()
    first = runner.run(collection)
    assert runner.last_stats.evaluated_tokens > 0 and runner.last_stats.cached == 0
    assert len(runner.cache) == 6

    again = BatchRunner(model, sampler, progress=False)  # a new runner reads the same file
    second = again.run(collection)
    assert all(r.cached for r in second) and second.texts == first.texts
    assert again.last_stats.evaluated_tokens == 0 and again.last_stats.generated_tokens == 0
    assert [r.completion_tokens for r in second] == [r.completion_tokens for r in first]

    other_sampler = BatchRunner(model, sampler.replace(max_len_tokens=8), progress=False)
    assert not any(r.cached for r in other_sampler.run(collection[:2]))

    uncached = BatchRunner(model, sampler, cache=False, progress=False)
    third = uncached.run(collection)
    assert not any(r.cached for r in third) and third.texts == first.texts
    assert uncached.last_stats.evaluated_tokens > 0
    assert len(ResponseCache()) == 8


@pytest.mark.slow
def test_typed_batch_is_cached_with_its_grammar(model: ez.Model, sampler) -> None:
    runner = ChatRunner(model, sampler=sampler.replace(max_len_tokens=32))
    first = runner(["Is water wet?", "Is fire cold?"], output_type={"answer": "bool"})
    assert runner.last_stats.cached == 0
    plain = runner(["Is water wet?", "Is fire cold?"])  # same prompts, no grammar: not a hit
    assert runner.last_stats.cached == 0 and all(isinstance(text, str) for text in plain)
    second = runner(["Is water wet?", "Is fire cold?"], output_type={"answer": "bool"})
    assert runner.last_stats.cached == 2 and second == first


def test_too_long_prompts_are_skipped_with_the_reason(model: ez.Model, sampler) -> None:
    long_text = "word " * 2500
    runner = BatchRunner(model, sampler, cache=False, progress=False)
    collection = PromptCollection.create_prompts(
        None, ["Hi.", long_text, "Bye."], template_name="plain"
    )
    responses = runner.run(collection)
    assert [r.ok for r in responses] == [True, False, True]
    assert "context holds 2048" in responses[1].skipped and responses[1].text == ""
    assert responses.totals()["skipped"] == 1
    assert responses[1].response_data["skipped"] == responses[1].skipped

    basic = BasicModelRunner(model, sampler, cache=False)
    assert basic(["Once upon a time", long_text])[1] is None
    assert "2048" in basic.last_responses[1].skipped
    with pytest.raises(ez.PromptTooLongError, match="context holds 2048"):
        basic(long_text)
