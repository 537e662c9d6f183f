"""Real OpenAI-compatible servers on loopback for the tests, running the default model:
llama-cpp-python's own (its ``server`` extra) and llama.cpp's ``llama-server`` (built once by
``scripts/llama_tools.py`` with the library's flags; ``scripts/test.sh`` builds it first)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import llama_tools  # noqa: E402

SERVER_CONTEXT = 2048


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(model_path: Path, port: int) -> list[str]:
    """llama-cpp-python's server with the default model on 127.0.0.1:port."""
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(SERVER_CONTEXT),
    ]  # fmt: skip


def start_server(model_path: Path, port: int, log: Path) -> subprocess.Popen:
    """llama-cpp-python's server with the default model on 127.0.0.1:port, once it answers."""
    return _started(server_command(model_path, port), port, log)


def llama_cpp_binary(name: str) -> Path:
    """llama.cpp's ``name`` (llama-server, rpc-server), built if it is not yet."""
    return llama_tools.ensure_built(llama_tools.SERVER_TARGETS) / name


def start_llama_server(
    model_path: Path, port: int, log: Path, *extra: str, context: int = SERVER_CONTEXT
) -> subprocess.Popen:
    """llama.cpp's llama-server with the default model on 127.0.0.1:port, once it answers."""
    command = [
        str(llama_cpp_binary("llama-server")), "-m", str(model_path), "--host", "127.0.0.1",
        "--port", str(port), "-c", str(context), "--no-webui", *extra,
    ]  # fmt: skip
    return _started(command, port, log, health="/health")


def start_template_server(
    model_path: Path, template: Path, log: Path
) -> tuple[int, subprocess.Popen]:
    """llama-server rendering with ``template`` (``--jinja``), for comparing prompts: its port
    and the process."""
    port = free_port()
    server = start_llama_server(
        model_path, port, log, "--jinja", "--chat-template-file", str(template),
        "--no-warmup", "-np", "1", context=256,
    )  # fmt: skip
    return port, server


def _started(
    command: list[str], port: int, log: Path, health: str = "/v1/models"
) -> subprocess.Popen:
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    while True:  # a server that never comes up is ended by the test's own time limit
        if process.poll() is not None:
            raise RuntimeError(f"the test server exited: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)  # in a loop: until the server answers its health check


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
