"""ez.RemoteModel against a real server on loopback: llama-cpp-python's OpenAI-compatible server
(its ``server`` extra) running the default model. The Thread-level behaviours run against both
the local Model and the RemoteModel, so the two backends are held to the same contract."""

from __future__ import annotations

import http.server
import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import ezchat as ez
from ezchat.backends import RemoteError, ServerUnavailableError
from ezchat.backends.http import _error_detail, backoff_delay, normalize_base_url
from ezchat.cli import app as cli_app
from ezchat.thread import Message

SERVER_CONTEXT = 2048
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_path: Path, port: int, log: Path) -> subprocess.Popen:
    """llama-cpp-python's server with the default model on 127.0.0.1:port, once it answers."""
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(SERVER_CONTEXT),
    ]  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the test server exited: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"the test server did not start in {STARTUP_SECONDS} s: see {log}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def server_url(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    process = start_server(model_path, port, tmp_path_factory.mktemp("server") / "server.log")
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture(scope="session")
def remote(server_url: str) -> Iterator[ez.RemoteModel]:
    connected = ez.RemoteModel(server_url)
    yield connected
    connected.unload()


@pytest.fixture
def own_server(model_path: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A server of this test's own, to kill."""
    port = free_port()
    process = start_server(model_path, port, tmp_path / "server.log")
    yield process, f"http://127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture(params=["local", "remote"])
def backend(request: pytest.FixtureRequest) -> ez.Backend:
    """The same tests, once with the local Model and once with the RemoteModel."""
    return request.getfixturevalue("model" if request.param == "local" else "remote")


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


def test_prefix_starts_the_reply(thread: ez.Thread) -> None:
    thread.add_message("user", "Say something about dogs.")
    reply = thread.start_reply(prefix="Dogs are").run()
    assert reply.startswith("Dogs are") and len(reply) > len("Dogs are")
    assert thread.messages[-1]["content"] == reply


def test_continue_extends_last_reply(thread: ez.Thread) -> None:
    thread.sampler.max_len_tokens = 6
    thread.add_message("user", "Write a story about a fox.")
    first = thread.start_reply().run()
    assert thread.last_result.stop_reason == "length"
    extended = thread.start_reply(continue_last=True).run()
    assert extended.startswith(first) and len(extended) > len(first)
    assert len([m for m in thread.messages if m["role"] == "bot"]) == 1


def test_reroll_replaces_the_last_reply(thread: ez.Thread) -> None:
    first = thread.send("Name a color.")
    reply = thread.start_reroll()
    again = reply.run()
    assert reply.replaced is not None and reply.replaced["content"] == first
    assert again == first  # greedy: the same prompt gives the same reply
    assert [m["role"] for m in thread.messages] == ["user", "bot"]


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
    threading.Thread(target=reply.cancel).start()
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
    assert lines[0] == f"{thread.len_messages()} / {SERVER_CONTEXT} tokens"
    assert lines[2] == f"{len(thread.messages)} messages"
    thread.reset()
    assert thread.messages == initial


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


def test_prompt_that_cannot_fit(backend: ez.Backend, greedy, model_path, server_url) -> None:
    tiny = (
        ez.Model(model_path, context_length=128)
        if isinstance(backend, ez.Model)
        else ez.RemoteModel(server_url, context_length=128)
    )
    with tiny:
        thread = ez.Thread(tiny, ez.formats.chatml, greedy)
        with pytest.raises(ez.PromptTooLongError, match="shorten"):
            thread.send("word " * 400)
        assert thread.messages[-1]["content"].startswith("word word")


def test_one_generation_at_a_time(backend: ez.Backend, chat_prompt: str, greedy) -> None:
    generation = backend.start(chat_prompt, sampler=greedy)
    with pytest.raises(ez.GenerationError, match="one generation at a time"):
        backend.start(chat_prompt, sampler=greedy)
    assert "Paris" in generation.run().text


# --- the remote backend ----------------------------------------------------------------------------


def test_same_greedy_replies_as_local(model: ez.Model, remote: ez.RemoteModel, greedy) -> None:
    for question in ("What is the capital of France?", "Tell me a fact about cats."):
        local = ez.Thread(model, ez.formats.chatml, greedy).send(question)
        served = ez.Thread(remote, ez.formats.chatml, greedy).send(question)
        assert served == local


def test_server_tokenizer_matches_local(model: ez.Model, remote: ez.RemoteModel) -> None:
    text = "<|im_start|>user\nHéllo, wörld! 🦊<|im_end|>\n"
    assert remote.tokenize(text, add_bos=False) == model.tokenize(text, add_bos=False)
    assert remote.detokenize(remote.tokenize(text, add_bos=False), special=True) == text
    assert remote.get_length("Hello world") == model.get_length("Hello world")
    assert remote.add_bos == model.add_bos
    assert remote.server_kind == "llama-cpp-python"


def test_prompt_text_is_rebuilt_exactly(remote: ez.RemoteModel, greedy) -> None:
    """llama-cpp-python takes text prompts and drops special tokens when it detokenizes, so
    ezchat rebuilds the prompt text from what it tokenized: it must equal the format's text."""
    thread = ez.Thread(remote, ez.formats.chatml, greedy)
    thread.set_system_prompt("Be brief.")
    thread.send("What is 2+2?")
    thread.add_message("user", "And 3+3?")
    plan = thread.plan_prompt()
    assert remote.detokenize(plan.tokens, special=True) == thread.inference_str_from_messages()


def test_auto_format_without_a_served_template(remote: ez.RemoteModel, greedy) -> None:
    """llama-cpp-python does not publish the chat template, so "auto" falls back to chatml."""
    thread = ez.Thread(remote, "auto", greedy)
    assert thread.format.name == "chatml"
    assert "Paris" in thread.send("What is the capital of France?")


def test_server_format_uses_the_servers_template(remote: ez.RemoteModel, greedy) -> None:
    thread = ez.Thread(remote, "server", greedy)
    thread.set_system_prompt("You are a helpful assistant.")
    reply = thread.send("What is the capital of France?")
    assert "Paris" in reply
    assert [m["role"] for m in thread.messages] == ["system", "user", "bot"]
    # the markers are ezchat's own: the reply never contains them, the stats count them
    assert "\ue000" not in reply and thread.len_messages() > 0
    follow = thread.send("And of Italy?")
    assert "Rome" in follow
    reroll = thread.start_reroll(candidates=2)
    events = list(reroll)
    assert reroll.result.text == follow and reroll.result.stop_reason == "stop_token"
    assert all(len(event.candidates) == 2 for event in events if event.candidates)


def test_reply_interrupted_by_another_client(server_url: str, greedy) -> None:
    """llama-cpp-python's server ends a stream early to serve a waiting request: the reply
    breaks off, which ezchat reports (the partial reply kept) instead of taking it as done."""
    first = ez.RemoteModel(server_url, retries=0)
    other = ez.RemoteModel(server_url)
    thread = ez.Thread(first, ez.formats.chatml, greedy.replace(max_len_tokens=300))
    thread.add_message("user", "Write a long poem about the sea.")
    reply = thread.start_reply()
    with pytest.raises(RemoteError, match="before it was finished") as failure:
        for count, _ in enumerate(reply, start=1):
            if count == 3:
                other.tokenize("hello")
    assert "\n" not in str(failure.value)
    assert reply.result.stop_reason == "error"
    assert thread.messages[-1]["content"] == reply.result.text != ""
    assert thread.send("Thanks!")  # the next request works
    first.unload()
    other.unload()


def test_server_killed_mid_reply(own_server, greedy) -> None:
    process, url = own_server
    remote = ez.RemoteModel(url, retries=1)
    thread = ez.Thread(remote, ez.formats.chatml, greedy.replace(max_len_tokens=300))
    thread.add_message("user", "Write a long poem about the sea.")
    reply = thread.start_reply()
    received = ""
    with pytest.raises(RemoteError) as failure:
        for count, event in enumerate(reply, start=1):
            received += event.text
            if count == 5:
                process.kill()
                process.wait()
    message = str(failure.value)
    assert "\n" not in message and url in message and "partial reply is kept" in message
    assert isinstance(failure.value, ez.EzChatError)
    assert reply.result.stop_reason == "error"
    assert thread.messages[-1]["role"] == "bot"
    assert thread.messages[-1]["content"] == reply.result.text
    assert reply.result.text.startswith(received) and received
    # the server stays down: the next message fails clearly and the chat keeps everything
    with pytest.raises(RemoteError, match="cannot reach the server"):
        thread.send("Are you there?")
    assert [m["role"] for m in thread.messages] == ["user", "bot", "user"]
    remote.unload()


def test_retry_until_the_server_is_back(own_server, model_path, tmp_path, chat_prompt, greedy):
    """Nothing streamed yet: a refused connection is retried with backoff."""
    process, url = own_server
    remote = ez.RemoteModel(url, retries=6)
    stop_server(process)
    port = int(url.rsplit(":", 1)[1])
    restarted: list[subprocess.Popen] = []
    starter = threading.Thread(
        target=lambda: restarted.append(start_server(model_path, port, tmp_path / "again.log"))
    )
    starter.start()
    try:
        assert "Paris" in remote.generate(chat_prompt, sampler=greedy)
    finally:
        starter.join()
        for again in restarted:
            stop_server(again)
        remote.unload()


class BusyProxy(http.server.ThreadingHTTPServer):
    """A real HTTP server on loopback in front of the real one: it answers the first ``busy``
    completion requests with 429 (Retry-After: 0) and forwards everything else."""

    def __init__(self, upstream: str, busy: int) -> None:
        self.upstream = upstream
        self.busy = busy
        self.refused = 0
        super().__init__(("127.0.0.1", 0), _BusyProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _BusyProxyHandler(http.server.BaseHTTPRequestHandler):
    server: BusyProxy

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/completions") and self.server.busy > 0:
            self.server.busy -= 1
            self.server.refused += 1
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
        with httpx.stream(
            self.command, self.server.upstream + self.path, content=body, headers=headers
        ) as upstream:
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "text/plain"))
            self.end_headers()  # no length: the body ends when the connection closes
            for chunk in upstream.iter_raw():
                self.wfile.write(chunk)
                self.wfile.flush()


@pytest.fixture
def busy_proxy(server_url: str) -> Iterator[BusyProxy]:
    proxy = BusyProxy(server_url, busy=0)
    serving = threading.Thread(target=proxy.serve_forever, daemon=True)
    serving.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_a_busy_server_is_retried_then_reported(busy_proxy: BusyProxy, chat_prompt, greedy):
    remote = ez.RemoteModel(busy_proxy.url, retries=3)
    try:
        busy_proxy.busy = 2  # two 429s, then the server answers
        assert "Paris" in remote.generate(chat_prompt, sampler=greedy)
        assert busy_proxy.refused == 2

        busy_proxy.busy, busy_proxy.refused = 100, 0  # busy for longer than the retries last
        with pytest.raises(RemoteError) as failure:
            remote.generate(chat_prompt, sampler=greedy)
        message = str(failure.value)
        assert "\n" not in message and "HTTP 429" in message and "try again" in message
        assert busy_proxy.refused == 1 + 3  # the first try and three retries
    finally:
        remote.unload()


def test_server_not_running_at_start() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailableError) as failure:
        ez.RemoteModel(url, retries=1)
    message = str(failure.value)
    assert isinstance(failure.value, ez.ModelLoadError)
    assert "\n" not in message and url in message and "start it" in message


def test_server_errors_are_one_line_and_teach_the_context(server_url: str, greedy) -> None:
    """Told a larger context than the server has, the server refuses the prompt: its words
    come back in one line, and the context size it names is used from then on."""
    remote = ez.RemoteModel(server_url, retries=1, context_length=8192)
    try:
        prompt = "word " * 2100
        with pytest.raises(RemoteError) as streamed:
            remote.generate(prompt, sampler=greedy)  # the stream just stops
        assert "\n" not in str(streamed.value) and "without finishing" in str(streamed.value)
        with pytest.raises(RemoteError) as refused:
            remote.candidates(prompt, 3)
        assert "\n" not in str(refused.value) and "maximum context length" in str(refused.value)
        assert remote.context_length == SERVER_CONTEXT
        with pytest.raises(ez.PromptTooLongError):
            remote.generate(prompt, sampler=greedy)
    finally:
        remote.unload()


def test_closed_remote_model_says_so(server_url: str) -> None:
    remote = ez.RemoteModel(server_url)
    remote.unload()
    assert not remote.is_loaded
    with pytest.raises(ez.ModelUnloadedException, match="connect again"):
        remote.tokenize("hello")


def test_unknown_model_name(server_url: str) -> None:
    with pytest.raises(ServerUnavailableError, match="has no model 'nope'"):
        ez.RemoteModel(server_url, model="nope")


def test_addresses_and_error_details() -> None:
    assert normalize_base_url("localhost:8080/v1/") == "http://localhost:8080"
    assert normalize_base_url("https://host/v1") == "https://host"
    assert _error_detail('{"error": {"message": "bad things\\nmore"}}') == "bad things"
    assert _error_detail('{"detail": [{"msg": "field required"}]}') == "field required"
    assert backoff_delay(0) < backoff_delay(1) < backoff_delay(2)
    assert backoff_delay(5, retry_after=3) == 3


# --- the front ends on a server ------------------------------------------------------------------


def test_cli_generate_and_candidates_on_a_server(server_url: str, model: ez.Model) -> None:
    question = "What is the capital of France?"
    common = ["--server", server_url, "-f", "chatml", "-c", "2048"]
    result = CliRunner().invoke(
        cli_app, ["generate", question, "-n", "16", "-s", "GreedyDecoding", *common]
    )
    assert result.exit_code == 0, result.output
    assert "Paris" in result.stdout
    result = CliRunner().invoke(cli_app, ["candidates", question, "-k", "3", "--json", *common])
    assert result.exit_code == 0, result.output
    thread = ez.Thread(model, "chatml")
    thread.add_message("user", question)
    local = model.candidates(thread.plan_prompt().tokens, 3)
    assert json.loads(result.stdout)[0]["id"] == local[0].id


def test_runners_on_a_server(remote: ez.RemoteModel, model: ez.Model) -> None:
    from ezchat.runners import ChatRunner

    sampler = ez.samplers.load("GreedyDecoding").replace(max_len_tokens=16)
    questions = ["What is the capital of France?", "Name a large animal."]
    answers = {}
    for backend in (remote, model):
        runner = ChatRunner(
            backend, system_prompt="Answer briefly.", format="chatml", sampler=sampler, cache=False
        )
        answers[backend] = runner(questions)
    assert answers[remote] == answers[model] and all(answers[remote])
    with pytest.raises(ez.EzChatError, match="typed output needs a local model"):
        ChatRunner(remote, format="chatml", cache=False)("Age?", output_type={"age": "int"})


async def test_the_app_on_a_server(server_url: str, tmp_path: Path) -> None:
    from tui_support import SIZE, send, wait_loaded

    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp

    options = ChatOptions(server=server_url, format="chatml", sampler="GreedyDecoding")
    app = EzChatApp(options, store_path=tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        assert isinstance(app.thread.model, ez.RemoteModel)
        await send(pilot, "What is the capital of France?")
        assert "Paris" in app.thread.messages[-1]["content"]
        assert len(app.candidates_pane.candidates) == 10  # from the server's log-probabilities
