"""ez.RemoteModel against llama.cpp's own llama-server on loopback (built by
scripts/llama_tools.py with the library's flags), and against a model split over two processes
with RPC: what a user who outgrows one machine runs. The Thread contract it shares with the
other backends is in test_thread_backends.py."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import free_port, llama_cpp_binary, start_llama_server, stop_server

import ezchat as ez
from ezchat.backends import RemoteError

QUESTION = "What is the capital of France?"


def like_the_server(model_path: Path) -> ez.Model:
    """The local model as llama-server runs it by default: flash attention on (its -fa auto
    picks it on this CPU), which moves probabilities by a few percent on this small model."""
    return ez.Model(model_path, context_length=2048, seed=1234, flash_attn=True)


@pytest.fixture
def server_with(model_path: Path, tmp_path: Path) -> Iterator:
    """Start a llama-server of this test's own with extra arguments; stopped afterwards."""
    started: list[subprocess.Popen] = []

    def start(*extra: str, context: int = 2048) -> tuple[subprocess.Popen, str, Path]:
        port = free_port()
        log = tmp_path / f"llama-server-{len(started)}.log"
        process = start_llama_server(model_path, port, log, *extra, context=context)
        started.append(process)
        return process, f"http://127.0.0.1:{port}", log

    yield start
    for process in started:
        stop_server(process)


def test_reads_its_kind_and_context(llama_remote: ez.RemoteModel) -> None:
    assert llama_remote.server_kind == "llama.cpp"
    assert llama_remote.context_length == 2048  # /props default_generation_settings.n_ctx


def test_tokenize_matches_the_local_model(llama_remote: ez.RemoteModel, model: ez.Model) -> None:
    text = "<|im_start|>user\nHéllo, wörld! 🦊<|im_end|>\n"
    assert llama_remote.tokenize(text, add_bos=False) == model.tokenize(text, add_bos=False)
    assert llama_remote.detokenize(model.tokenize(text, add_bos=False), special=True) == text


def test_greedy_chat_is_the_local_models_token_for_token(
    llama_remote: ez.RemoteModel, model_path: Path, greedy
) -> None:
    """Prompts go as token ids, so the server decodes exactly what the Thread built."""
    with like_the_server(model_path) as fresh:
        local = ez.Thread(fresh, ez.formats.chatml, greedy)
        served = ez.Thread(llama_remote, ez.formats.chatml, greedy)
        for question in (QUESTION, "And of Italy?"):
            assert served.send(question) == local.send(question)
            assert served.last_result.tokens == local.last_result.tokens


def test_candidates_from_n_probs_match_the_local_top_k(
    llama_remote: ez.RemoteModel, model_path: Path, chat_prompt: str
) -> None:
    with like_the_server(model_path) as fresh:
        for prompt in (chat_prompt, "The dog says woof, but the cat says"):
            served = llama_remote.candidates(prompt, 5)
            local = fresh.candidates(prompt, 5)
            assert [c.id for c in served] == [c.id for c in local]
            for ours, theirs in zip(served, local, strict=True):
                assert abs(ours.probability - theirs.probability) < 1e-3


def test_a_stopped_reply_frees_its_slot(server_with, greedy) -> None:
    """One slot: a reply the user stopped must not keep it busy until max_tokens."""
    _, url, _ = server_with("--parallel", "1")
    with ez.RemoteModel(url) as remote:
        thread = ez.Thread(remote, ez.formats.chatml, greedy.replace(max_len_tokens=1500))
        thread.add_message("user", "Write a very long poem about the sea.")
        reply = thread.start_reply()
        for count, _ in enumerate(reply, start=1):
            if count == 3:
                reply.cancel()
        assert reply.result.stop_reason == "cancelled"
        while True:
            slots = httpx.get(f"{url}/slots", timeout=5).json()
            if not any(slot.get("is_processing") for slot in slots):
                break
            time.sleep(0.05)  # in a loop: until the server's slot has stopped decoding
        decoded = slots[0].get("next_token", [{}])[0].get("n_decoded", 0)
        assert decoded < 200, f"the server went on decoding after the stop: {slots}"
        assert thread.send("Thanks!")  # the slot serves the next request


def test_parallel_slots_each_get_their_share_of_the_context(server_with, greedy) -> None:
    _, url, _ = server_with("--parallel", "2", context=2048)
    with ez.RemoteModel(url) as remote:
        assert remote.context_length == 1024  # what one slot holds, not -c
        thread = ez.Thread(remote, ez.formats.chatml, greedy.replace(max_len_tokens=8))
        with pytest.raises(ez.PromptTooLongError):
            thread.send("word " * 1100)  # fits in 2048, not in a slot


def test_the_api_key_is_enforced(server_with, monkeypatch, greedy) -> None:
    _, url, _ = server_with("--api-key", "sekrit")
    monkeypatch.delenv("EZCHAT_API_KEY", raising=False)
    for key in (None, "wrong"):
        with pytest.raises(RemoteError) as refused:
            ez.RemoteModel(url, api_key=key)
        message = str(refused.value)
        assert "\n" not in message and "API key" in message and "EZCHAT_API_KEY" in message
    with ez.RemoteModel(url, api_key="sekrit") as remote:
        assert "Paris" in ez.Thread(remote, ez.formats.chatml, greedy).send(QUESTION)
    monkeypatch.setenv("EZCHAT_API_KEY", "sekrit")
    with ez.RemoteModel(url) as remote:
        assert remote.context_length == 2048


# --- a model split over two processes: llama-server with an RPC worker ------------------------


@pytest.fixture
def rpc_worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    log = (tmp_path / "rpc.log").open("ab")
    worker = str(llama_cpp_binary("ggml-rpc-server"))
    command = [worker, "-H", "127.0.0.1", "-p", str(port), "-t", "2"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    while True:  # it says nothing until its buffered stdout flushes: knock on its port
        assert process.poll() is None, (tmp_path / "rpc.log").read_text()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)  # in a loop: until the RPC worker listens on its port
    yield process, port
    stop_server(process)
    log.close()


def test_a_model_split_over_an_rpc_worker_answers_as_the_local_one(
    rpc_worker, server_with, model_path: Path, greedy
) -> None:
    worker, port = rpc_worker
    # 10 of the model's 30 layers on the worker; the rest stay with llama-server's CPU
    _, url, log = server_with("--rpc", f"127.0.0.1:{port}", "-ngl", "10", "-lv", "4")
    server_log = log.read_text(errors="replace")
    assert "offloaded 10/31 layers" in server_log, server_log[-2000:]
    assert f"RPC0[127.0.0.1:{port}] model buffer size" in server_log  # the weights went there
    with (
        ez.RemoteModel(url, retries=1) as remote,
        ez.Model(model_path, context_length=2048) as local,
    ):
        split = ez.Thread(remote, ez.formats.chatml, greedy)
        alone = ez.Thread(local, ez.formats.chatml, greedy)
        assert split.send(QUESTION) == alone.send(QUESTION)
        assert split.last_result.tokens == alone.last_result.tokens
        # the worker dies mid-reply: one clear line, and the chat keeps what it had
        split.sampler.max_len_tokens = 300
        split.add_message("user", "Write a long poem about the sea.")
        reply = split.start_reply()
        with pytest.raises(RemoteError) as failure:
            for count, _ in enumerate(reply, start=1):
                if count == 3:
                    worker.kill()
                    worker.wait()
        assert "\n" not in str(failure.value) and url in str(failure.value)
        assert [m["role"] for m in split.messages] == ["user", "bot", "user", "bot"]
        assert split.messages[-1]["content"] == reply.result.text
