"""Shared fixtures: the real default model and a second architecture, each loaded once per
session, a private user dir, and a server on loopback running the default model."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port, start_llama_server, start_server, stop_server

import ezchat as ez
from ezchat.settings.modelpath import gemma3_model_path

# A suite started in the background by a shell without job control inherits SIGINT ignored,
# and every process it starts would too: the tests that interrupt ezchat with SIGINT need
# Python's default handling in the child, which a handler here gives it (exec resets handlers
# to the default, but keeps an ignored signal ignored).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tests that use these start a server process, llama.cpp's own tools or ezchat on a pty: the
# full suite runs them, the quick tier (-m "not slow") leaves them out.
SLOW_FIXTURES = frozenset(
    {
        "server_url",
        "remote",
        "llama_server_url",
        "llama_remote",
        "server_with",
        "rpc_worker",
        "own_server",
        "busy_proxy",
        "backend_url",
        "llama_server_prompts",
        "terminal",
        "app_terminal",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config/data/cache dirs, so nothing touches the user's files."""
    home = tmp_path / "ezchat-home"
    monkeypatch.setenv("EZCHAT_HOME", str(home))
    monkeypatch.delenv("EZCHAT_MODEL", raising=False)
    return home


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ez.default_model_path()


@pytest.fixture(scope="session")
def model(model_path: Path) -> ez.Model:
    loaded = ez.Model(model_path, context_length=2048, seed=1234)
    yield loaded
    loaded.unload()


@pytest.fixture(scope="session")
def second_model_path() -> Path:
    """Gemma 3 270M base: another architecture (sliding-window attention of 512 tokens, no
    chat template, a 262k vocabulary), assembled from its PyPI parts."""
    return gemma3_model_path()


@pytest.fixture(scope="session")
def second_model(second_model_path: Path) -> ez.Model:
    """The second model at a small context, so a chat outgrows it (and the sliding window)."""
    loaded = ez.Model(second_model_path, context_length=1024, seed=1234)
    yield loaded
    loaded.unload()


@pytest.fixture
def greedy() -> ez.SamplerSettings:
    sampler = ez.samplers.load("GreedyDecoding")
    sampler.max_len_tokens = 48
    return sampler


CHAT_PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def chat_prompt() -> str:
    """A raw ChatML prompt whose greedy answer names Paris."""
    return CHAT_PROMPT


# --- a real server on loopback, started the first time a test asks for it ---


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


@pytest.fixture(scope="session")
def llama_server_url(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's own llama-server, the server most users of a remote model run."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    process = start_llama_server(model_path, port, log)
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture(scope="session")
def llama_remote(llama_server_url: str) -> Iterator[ez.RemoteModel]:
    connected = ez.RemoteModel(llama_server_url)
    yield connected
    connected.unload()
