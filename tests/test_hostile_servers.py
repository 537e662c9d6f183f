"""Servers that misbehave: an endless body, a drip, a hang, a reply that goes quiet, HTML, bad
JSON, a 500. Each ends in one line naming the limit it hit, whether it misbehaves while ezchat
connects or mid-reply, in the library (RemoteModel, Thread), the CLI and the app. The limits
are set low here so that they are reached soon (tests/hostile_servers.py has the servers)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from cli_support import run_ezchat
from hostile_servers import (
    BAD_JSON,
    DRIP,
    ENDLESS_EVENTS,
    ENDLESS_LINE,
    ERROR_500,
    HANG,
    HTML,
    KINDS,
    QUIET,
    hostile_server,
)

import ezchat as ez
from ezchat.backends import RemoteError, ServerUnavailableError
from ezchat.settings.config import load_config

ROOT = Path(__file__).resolve().parent.parent
# a stream's line may hold 1 MiB (or max_read, if less): 2 MiB tells the two limits apart
TIMEOUT, IDLE, MAX_READ_MB = 1.0, 1.0, 2.0
LIMITS = {"timeout": TIMEOUT, "idle_timeout": IDLE, "max_read_mb": MAX_READ_MB, "retries": 1}
LIMIT_FLAGS = ["--timeout", "1", "--idle-timeout", "1", "--max-read-mb", "2"]
COMPLETIONS = ("/completions",)


# what each misbehaviour is reported as
SAYS = {
    ENDLESS_LINE: "longer than 1 MiB",
    ENDLESS_EVENTS: "grew past 2 MiB",
    DRIP: "did not answer within 1 s",
    HANG: "did not answer within 1 s",
    QUIET: "sent nothing for 1 s mid-reply",
    HTML: "web page",
    BAD_JSON: "not a JSON object",
    ERROR_500: "HTTP 500",
}
# while connecting, every answer is a plain one: read whole, within the timeout
SAYS_CONNECTING = {
    **SAYS,
    ENDLESS_LINE: "answered more than 2 MiB",
    ENDLESS_EVENTS: "answered more than 2 MiB",
    QUIET: "did not answer within 1 s",
    HTML: "not a JSON object",
}


def _one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


# --- the library --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_connecting_to_a_misbehaving_server(kind: str) -> None:
    with hostile_server(kind) as server, pytest.raises(ServerUnavailableError) as failure:
        ez.RemoteModel(server.url, **LIMITS)
    _one_line(str(failure.value), server.url, SAYS_CONNECTING[kind])
    assert server.misbehaved >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_reply_from_a_misbehaving_server(kind: str, server_url: str, greedy) -> None:
    """The real server answers everything but the completion, which misbehaves: the Thread
    raises one line naming the limit that stopped it and keeps the user's message (and any partial reply)."""
    with hostile_server(kind, server_url, COMPLETIONS) as server:
        remote = ez.RemoteModel(server.url, **LIMITS)
        thread = ez.Thread(remote, ez.formats.chatml, greedy)
        with pytest.raises(RemoteError) as failure:
            thread.send("Say hi.")
        remote.unload()
    _one_line(str(failure.value), SAYS[kind])
    # the Thread records what streamed as the reply, empty where nothing did
    assert [m["role"] for m in thread.messages] == ["user", "bot"]
    assert thread.messages[0]["content"] == "Say hi."
    partial = thread.messages[1]["content"]
    assert thread.last_result.stop_reason == "error"
    if kind in (QUIET, ENDLESS_EVENTS):  # the text that came before the failure is kept
        assert partial and set(partial) == {"a"}
    else:
        assert partial == ""


def test_a_stopped_reply_ends_while_the_server_is_silent(server_url: str, greedy) -> None:
    """cancel() from another thread ends a reply even when the server sends nothing at all:
    it ends cancelled, not at the timeout (far beyond the test's own time limit here)."""
    with hostile_server(HANG, server_url, COMPLETIONS) as server:
        remote = ez.RemoteModel(server.url, timeout=3600, idle_timeout=3600, retries=0)
        generation = remote.start("Say hi.", sampler=greedy)
        running = threading.Thread(target=generation.run)
        running.start()
        while not server.misbehaved:
            time.sleep(0.05)  # in a loop: until the server holds the completion request
        generation.cancel()
        running.join()
        remote.unload()
    assert generation.result.stop_reason == "cancelled"


@pytest.mark.slow
def test_a_timeout_is_not_retried() -> None:
    with hostile_server(HANG) as server, pytest.raises(ServerUnavailableError) as failure:
        ez.RemoteModel(server.url, timeout=1, retries=3)
    assert server.misbehaved == 1
    _one_line(str(failure.value), "did not answer within 1 s")


def test_bad_limits_are_one_line() -> None:
    with pytest.raises(ez.EzChatError, match=r"timeout \(--timeout, server_timeout\)"):
        ez.RemoteModel("http://127.0.0.1:9", timeout=0)


# --- the CLI ------------------------------------------------------------------------------------


def _ezchat(*args: str) -> subprocess.CompletedProcess[str]:
    return run_ezchat(*args, timeout=60)


def _cli_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ezchat: error: "), result.stderr
    _one_line(lines[0], *fragments)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_cli_connecting_to_a_misbehaving_server(kind: str, isolated_home: Path) -> None:
    with hostile_server(kind) as server:
        result = _ezchat("generate", "Say hi.", "--server", server.url, *LIMIT_FLAGS)
    _cli_error(result, server.url, SAYS_CONNECTING[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_cli_generate_on_a_misbehaving_server(
    kind: str, server_url: str, isolated_home: Path
) -> None:
    with hostile_server(kind, server_url, COMPLETIONS) as server:
        args = ["generate", "Say hi.", "--server", server.url, "-f", "chatml", "-n", "8"]
        result = _ezchat(*args, *LIMIT_FLAGS)
    _cli_error(result, SAYS[kind])


@pytest.mark.slow
def test_cli_takes_the_timeout_from_the_config_file(isolated_home: Path) -> None:
    with hostile_server(HANG) as server:
        set_it = _ezchat("config", "set", "server_timeout", "1")
        assert set_it.returncode == 0, set_it.stderr
        assert load_config().server_timeout == 1.0
        result = _ezchat("generate", "Say hi.", "--server", server.url)
    _cli_error(result, server.url, "did not answer within 1 s", "--timeout")  # not 120 s
    refused = _ezchat("config", "set", "server_timeout", "nan")
    _cli_error(refused, "server_timeout must be a positive number")


# --- the app --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quitting_the_app_while_it_connects_ends_it(isolated_home: Path) -> None:
    """The app connects to a server that never answers, with a timeout longer than any test
    runs: q on the loading screen ends the process, and the connection never gives up first."""
    with hostile_server(HANG) as server:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        env = dict(os.environ, EZCHAT_HOME=str(isolated_home), PYTHONPATH=str(ROOT))
        env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        process = subprocess.Popen(
            [sys.executable, "-m", "ezchat", "--server", server.url, "--timeout", "3600"],
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
            process_group=0,  # the app runs in a child of this process (crashguard): end both
        )
        os.close(slave)
        screen = b""

        def read_screen() -> bool:
            """Read what the app drew in the next 0.1 s; False once the terminal is closed."""
            nonlocal screen
            if select.select([master], [], [], 0.1)[0]:
                try:
                    screen += os.read(master, 65536)
                except OSError:  # the terminal closed as the app ended
                    return False
            return True

        try:
            while b"Connecting" not in screen:  # the app's title on its loading screen
                assert process.poll() is None, screen[-500:]
                read_screen()
            while not server.misbehaved:  # until the app's worker waits on the server
                read_screen()
            os.write(master, b"q")
            while process.poll() is None and read_screen():  # until the app ends, on q alone
                pass
            process.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            os.close(master)
    assert process.returncode == 0
    assert b"did not answer" not in screen


def test_limits_in_the_config_file_are_checked(isolated_home: Path) -> None:
    from ezchat.settings.config import config_path

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('server = "http://127.0.0.1:9"\nserver_idle_timeout = -1\n')
    with pytest.raises(ez.EzChatError) as failure:
        load_config()
    _one_line(str(failure.value), str(path), "server_idle_timeout must be a positive number")
    path.write_text("server_timeout = 2\nserver_idle_timeout = 0.5\nserver_max_read_mb = 8\n")
    from ezchat.session import ChatOptions

    options = ChatOptions(server="http://127.0.0.1:9", idle_timeout=3).with_config()
    assert (options.timeout, options.idle_timeout, options.max_read_mb) == (2, 3, 8)
