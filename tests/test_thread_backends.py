"""The Thread contract, held by every backend: each test runs with the local ``Model``, and
with a ``RemoteModel`` on each of two real servers on loopback running the same model:
llama-cpp-python's and llama.cpp's own llama-server.

What only one backend does is tested beside it: the local KV cache in test_thread.py, the
server's ways in test_remote.py."""

from __future__ import annotations

import io
import threading

import pytest
from servers import SERVER_CONTEXT

import ezchat as ez
from ezchat.chat.thread import Message

BACKEND_FIXTURES = {"local": "model", "llama-cpp-python": "remote", "llama-server": "llama_remote"}
SERVER_URLS = {"llama-cpp-python": "server_url", "llama-server": "llama_server_url"}


@pytest.fixture(params=list(BACKEND_FIXTURES))
def backend(request: pytest.FixtureRequest) -> ez.Backend:
    """The same tests with the local Model and with a RemoteModel on each server."""
    return request.getfixturevalue(BACKEND_FIXTURES[request.param])


@pytest.fixture
def backend_url(request: pytest.FixtureRequest, backend: ez.Backend) -> str | None:
    """The URL of the server behind ``backend`` (None for the local model)."""
    name = request.node.callspec.params["backend"]
    return request.getfixturevalue(SERVER_URLS[name]) if name in SERVER_URLS else None


@pytest.fixture
def thread(backend: ez.Backend, greedy: ez.SamplerSettings) -> ez.Thread:
    return ez.Thread(backend, ez.formats.chatml, greedy)


# --- the shared contract: both backends ----------------------------------------------------------


def test_both_backends_satisfy_the_protocol(backend: ez.Backend) -> None:
    assert isinstance(backend, ez.Backend)
    assert backend.context_length == backend.n_ctx == SERVER_CONTEXT
    assert backend.is_loaded and "smollm2" in backend.name.lower()


def test_generate_and_stream(backend: ez.Backend, chat_prompt: str, greedy) -> None:
    text = backend.generate(chat_prompt, sampler=greedy)
    assert "Paris" in text
    chunks = list(backend.stream(chat_prompt, sampler=greedy))
    assert "".join(c["choices"][0]["text"] for c in chunks) == text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_send_records_both_messages(thread: ez.Thread) -> None:
    start = len(thread.messages)
    reply = thread.send("What is the capital of France?")
    assert "Paris" in reply
    assert [m["role"] for m in thread.messages[start:]] == ["user", "bot"]
    assert thread.messages[-1]["content"] == reply
    assert isinstance(thread.messages[-1], Message)


def test_streamed_chat_records_both_messages(thread: ez.Thread) -> None:
    thread.add_message("user", "What is the capital of France?")
    reply = thread.start_reply()
    pieces = [event.text for event in reply]
    assert len(pieces) > 3  # it came token by token
    assert thread.messages[-1]["content"] == "".join(pieces) == reply.result.text
    assert "Paris" in reply.result.text
    assert [m["role"] for m in thread.messages] == ["user", "bot"]
    assert isinstance(thread.messages[-1], Message)
    assert reply.result.stop_reason == "stop_token"
    assert thread.last_result.prompt.prompt_tokens == len(thread.last_plan.tokens)


@pytest.mark.slow
def test_prefix_starts_the_reply(thread: ez.Thread) -> None:
    thread.add_message("user", "Say something about dogs.")
    reply = thread.start_reply(prefix="Dogs are").run()
    assert reply.startswith("Dogs are") and len(reply) > len("Dogs are")
    assert thread.messages[-1]["content"] == reply


@pytest.mark.slow
def test_continue_extends_last_reply(thread: ez.Thread) -> None:
    thread.sampler.max_len_tokens = 6
    thread.add_message("user", "Write a story about a fox.")
    first = thread.start_reply().run()
    assert thread.last_result.stop_reason == "length"
    extended = thread.start_reply(continue_last=True).run()
    assert extended.startswith(first) and len(extended) > len(first)
    assert len([m for m in thread.messages if m["role"] == "bot"]) == 1


@pytest.mark.slow
def test_reroll_replaces_the_last_reply(thread: ez.Thread) -> None:
    first = thread.send("Name a color.")
    reply = thread.start_reroll()
    again = reply.run()
    assert reply.replaced is not None and reply.replaced["content"] == first
    assert again == first  # greedy: the same prompt gives the same reply
    assert [m["role"] for m in thread.messages] == ["user", "bot"]


@pytest.mark.slow
def test_cancelled_reply_is_kept(thread: ez.Thread) -> None:
    thread.sampler.max_len_tokens = 100
    thread.add_message("user", "Write a long poem.")
    reply = thread.start_reply()
    for count, _ in enumerate(reply, start=1):
        if count == 3:
            reply.cancel()
    assert reply.result.stop_reason == "cancelled"
    assert thread.messages[-1]["role"] == "bot"
    assert thread.messages[-1]["content"] == reply.result.text != ""
    assert thread.send("Thanks!")  # the model is free again


def test_cancel_from_another_thread(thread: ez.Thread) -> None:
    thread.sampler.max_len_tokens = 400
    thread.add_message("user", "Write a very long poem about the sea.")
    reply = thread.start_reply()
    events = iter(reply)
    next(events)  # streaming has begun
    stopper = threading.Thread(target=reply.cancel)
    stopper.start()
    stopper.join()  # the stop is in before the next token, however the threads run
    rest = list(events)
    assert reply.result.stop_reason == "cancelled"
    assert len(rest) < 399
    assert thread.messages[-1]["content"] == reply.result.text


def test_candidates_while_streaming(thread: ez.Thread) -> None:
    thread.add_message("user", "What is the capital of France?")
    reply = thread.start_reply(candidates=3)
    events = [event for event in reply if event.candidates is not None]
    assert reply.result.stop_reason == "stop_token" and "Paris" in reply.result.text
    assert len(events) >= reply.result.n_generated - 1  # nearly every token has candidates
    for event in events:
        assert event.id >= 0  # known once the reply is over, even where the server streams none
        assert len(event.candidates) == 3
        probabilities = [c.probability for c in event.candidates]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0001
        assert event.candidates[0].id == event.id  # greedy takes the likeliest


@pytest.mark.slow
def test_candidates_at_and_branch(thread: ez.Thread, backend: ez.Backend) -> None:
    reply = thread.send("What is the capital of France?")
    index = len(thread.messages) - 1
    candidates = thread.candidates_at(index, 0, k=5)
    assert len(candidates) == 5
    assert candidates[0].id == thread.reply_tokens(thread.messages[index])[0]
    assert reply.startswith(candidates[0].text)
    other = next(c for c in candidates[1:] if c.text.strip())
    branch = thread.start_branch(0, other.id)
    text = branch.run()
    assert branch.replaced["content"] == reply
    assert text.startswith(other.text) and text != reply
    assert backend.detokenize(thread.reply_tokens(thread.messages[-1])) == text


def test_reset_and_stats(thread: ez.Thread) -> None:
    initial = list(thread.messages)
    thread.send("Hello")
    out = io.StringIO()
    thread.print_stats(file=out)
    lines = out.getvalue().splitlines()
    stats = thread.context_stats()
    assert stats.in_context == thread.len_messages() and stats.left_out == 0
    assert lines[0] == (
        f"{stats.in_context} / {SERVER_CONTEXT} tokens in the context ({stats.fraction:.0%})"
    )
    assert lines[1] == f"0 of {len(thread.messages)} messages left out of the context"
    assert lines[2] == f"history: {len(thread.messages)} messages, {stats.history_tokens} tokens"
    thread.reset()
    assert thread.messages == initial


@pytest.mark.slow
def test_long_chat_drops_old_messages(backend: ez.Backend, greedy) -> None:
    """With a context smaller than the model's, the Thread leaves old messages out to fit."""
    saved = backend.context_length
    backend.context_length = 160
    try:
        thread = ez.Thread(backend, ez.formats.chatml, greedy.replace(max_len_tokens=16))
        for turn in range(8):
            thread.send(f"Turn {turn}: name an animal.")
            assert thread.last_result.prompt.prompt_tokens + thread.last_result.n_generated <= 160
        assert thread.last_plan.dropped > 0
        assert len(thread.messages) == 16
    finally:
        backend.context_length = saved


def test_prompt_that_cannot_fit(backend: ez.Backend, greedy, model_path, backend_url) -> None:
    tiny = (
        ez.Model(model_path, context_length=128)
        if backend_url is None
        else ez.RemoteModel(backend_url, context_length=128)
    )
    with tiny:
        thread = ez.Thread(tiny, ez.formats.chatml, greedy)
        before = list(thread.messages)
        with pytest.raises(ez.PromptTooLongError, match="shorten the message"):
            thread.send("word " * 400)
        assert thread.messages[: len(before)] == before
        assert thread.messages[-1]["content"].startswith("word word")  # what the user typed is kept


def test_one_generation_at_a_time(backend: ez.Backend, chat_prompt: str, greedy) -> None:
    generation = backend.start(chat_prompt, sampler=greedy)
    with pytest.raises(ez.GenerationError, match="one generation at a time"):
        backend.start(chat_prompt, sampler=greedy)
    assert "Paris" in generation.run().text
