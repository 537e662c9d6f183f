"""ez.RemoteModel against a real server on loopback (llama-cpp-python's OpenAI-compatible
server running the default model): what only a remote backend does or meets. The Thread
contract both backends share is in test_thread_backends.py."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import (
    SERVER_CONTEXT,
    free_port,
    server_command,
    start_llama_server,
    start_server,
    stop_server,
)
from typer.testing import CliRunner

import ezchat as ez
from ezchat.backends import RemoteError, ServerUnavailableError
from ezchat.backends.http import _error_detail, backoff_delay, normalize_base_url
from ezchat.cli.app import app as cli_app


@pytest.fixture
def own_server(
    request: pytest.FixtureRequest, model_path: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen, str]]:
    """A server of this test's own, to kill: llama-cpp-python's, or llama.cpp's llama-server
    when a test asks for it with ``indirect`` parametrization."""
    port = free_port()
    log = tmp_path / "server.log"
    kind = getattr(request, "param", "llama-cpp-python")
    start = start_llama_server if kind == "llama-server" else start_server
    process = start(model_path, port, log)
    yield process, f"http://127.0.0.1:{port}"
    stop_server(process)


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


def test_auto_format_without_a_served_template(
    remote: ez.RemoteModel, model: ez.Model, greedy
) -> None:
    """llama-cpp-python does not publish the chat template, so "auto" picks the shipped format
    of the served model's family by its name (SmolLM2: ChatML with its own system prompt)."""
    thread = ez.Thread(remote, "auto", greedy)
    assert thread.format.name == "smollm2"
    assert "name" in (thread.format_choice.reason or "")
    question = "What is the capital of France?"
    # the same format on the local model answers the same, greedy
    assert thread.send(question) == ez.Thread(model, "smollm2", greedy).send(question)


def test_server_format_uses_the_servers_template(
    remote: ez.RemoteModel, model_path: Path, greedy
) -> None:
    thread = ez.Thread(remote, "server", greedy)
    thread.set_system_prompt("You are a helpful assistant.")
    reply = thread.send("What is the capital of France?")
    assert [m["role"] for m in thread.messages] == ["system", "user", "bot"]
    # the markers are ezchat's own: the reply never contains them, the stats count them
    assert "\ue000" not in reply and thread.len_messages() > 0
    follow = thread.send("And of Italy?")
    # The same chat on a fresh local model in its own ChatML: the same replies. (Not a fixed
    # answer: a greedy reply of this 135M model moves with the CPU's kernels and with how the
    # prompt was split into batches, and the server evaluates from an empty cache.)
    with ez.Model(model_path, context_length=SERVER_CONTEXT, seed=1234) as fresh:
        local = ez.Thread(fresh, ez.formats.chatml, greedy)
        local.set_system_prompt("You are a helpful assistant.")
        assert local.send("What is the capital of France?") == reply
        assert local.send("And of Italy?") == follow
    follow_stop = thread.last_result.stop_reason
    reroll = thread.start_reroll(candidates=2)
    events = list(reroll)
    assert reroll.result.text == follow and reroll.result.stop_reason == follow_stop
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


@pytest.mark.parametrize("own_server", ["llama-cpp-python", "llama-server"], indirect=True)
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
    remote = ez.RemoteModel(url, retries=8)
    stop_server(process)
    port = int(url.rsplit(":", 1)[1])
    # The server comes back on its own, with no health probe of the test's: llama-cpp-python's
    # server breaks off a stream when another request comes in, and a probe landing after the
    # client got through would interrupt the reply under test.
    with (tmp_path / "again.log").open("ab") as log:
        again = subprocess.Popen(
            server_command(model_path, port), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        assert "Paris" in remote.generate(chat_prompt, sampler=greedy)
    finally:
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


@pytest.mark.parametrize("backend", ["remote", "llama_remote"])
@pytest.mark.slow
def test_typed_output_on_a_server_is_held_by_its_grammar(
    backend: str, request: pytest.FixtureRequest, model: ez.Model
) -> None:
    """llama.cpp's server and llama-cpp-python's take the GBNF grammar with the request, so a
    typed run on them returns the declared types, as the local grammar sampler does."""
    from ezchat.runners import ChatRunner

    remote = request.getfixturevalue(backend)
    sampler = ez.samplers.load("GreedyDecoding").replace(max_len_tokens=48)
    output_type = {"age": "int", "name": "str", "happy": "bool"}
    replies = {}
    for each in (remote, model):
        runner = ChatRunner(each, format="chatml", sampler=sampler, cache=False)
        replies[each] = runner("Describe a person as JSON.", output_type=output_type)
    served = replies[remote]
    assert isinstance(served["age"], int) and isinstance(served["name"], str)
    assert isinstance(served["happy"], bool)
    assert served == replies[model]  # greedy under the same grammar: the same values


def test_what_a_server_cannot_do_is_said_in_one_line(remote: ez.RemoteModel) -> None:
    for call in (remote.save_state, lambda: remote.load_state([1], b""), remote.reset_cache):
        with pytest.raises(ez.NotSupportedError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and remote.base_url in message
        assert "KV cache" in message or "cache" in message
    remote.ingest("The quick brown fox")  # evaluated into the server's prompt cache


def test_a_server_without_gbnf_refuses_a_grammar_in_one_line() -> None:
    from ezchat.backends.capabilities import grammar_fields
    from ezchat.backends.servers import LLAMA_CPP, OPENAI, VLLM, ServerInfo

    assert grammar_fields(ServerInfo(kind=LLAMA_CPP), 'root ::= "a"', "x") == {
        "grammar": 'root ::= "a"'
    }
    assert grammar_fields(ServerInfo(kind=VLLM), None, "x") == {}
    for kind in (VLLM, OPENAI):
        with pytest.raises(ez.EzChatError, match="takes no GBNF grammar.*local GGUF"):
            grammar_fields(ServerInfo(kind=kind), 'root ::= "a"', "http://box:8000")


async def test_the_app_on_a_server(server_url: str, tmp_path: Path) -> None:
    from tui_support import SIZE, send, wait_loaded

    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp

    options = ChatOptions(server=server_url, format="chatml", sampler="GreedyDecoding")
    app = EzChatApp(options, store_path=tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        assert isinstance(app.chat_screen.thread.model, ez.RemoteModel)
        await send(pilot, "What is the capital of France?")
        assert "Paris" in app.chat_screen.thread.messages[-1]["content"]
        assert (
            len(app.chat_screen.candidates_pane.candidates) == 10
        )  # from the server's log-probabilities


def test_cli_chat_on_a_server(server_url: str, remote: ez.RemoteModel) -> None:
    """The REPL on a server: its header names the served model and where it is served."""
    keys = "What is the capital of France?\n"
    result = CliRunner().invoke(
        cli_app,
        ["chat", "--server", server_url, "-f", "chatml", "-s", "GreedyDecoding"],
        input=keys,
    )
    assert result.exit_code == 0, (result.output, result.exception)
    header, reply = result.stdout.split("\n")[:2]
    assert header == (
        f"{remote.name} on {server_url}, context {SERVER_CONTEXT}, format chatml, "
        "sampler GreedyDecoding"
    )
    assert "Paris" in reply


async def test_the_app_when_its_server_goes_away(own_server, tmp_path: Path) -> None:
    """The server dies between two messages: the app says so in a notification, keeps
    running, and keeps the message that could not be answered."""
    from tui_support import SIZE, send, wait_loaded, wait_until

    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp

    process, url = own_server
    options = ChatOptions(server=url, format="chatml", sampler="GreedyDecoding")
    app = EzChatApp(options, store_path=tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=8)
        app.chat_screen.thread.model._client.retries = 0  # the server is not coming back
        await send(pilot, "Say hi.")
        assert app.chat_screen.thread.messages[-1]["role"] == "bot"
        stop_server(process)
        await send(pilot, "Say hi again.")
        await wait_until(
            pilot,
            lambda: any("cannot reach the server" in n.message for n in app._notifications),
            "the notification",
        )
        assert app.is_running and app.return_code is None
        assert [m["role"] for m in app.chat_screen.thread.messages] == ["user", "bot", "user"]
        assert app.chat_screen.thread.messages[-1]["content"] == "Say hi again."
        shown = [view.content for view in app.chat_screen.conversation.query("MessageView")]
        assert shown[-1] == "Say hi again."
        reasons = [n.message for n in app._notifications if "cannot reach" in n.message]
        assert len(reasons) == 1, reasons  # the failed reply and the context count say it once
