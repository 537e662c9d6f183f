"""The app on a real terminal, ended mid-reply by a signal (SIGTERM, SIGHUP, SIGINT) or by its
guarding parent being killed: it ends the way Ctrl+Q does, with the reply written so far saved,
the terminal given back, and status 128 + the signal."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from gates import ProcessHold
from test_repl import ENTER, Terminal

import ezchat as ez
from ezchat.settings import paths
from ezchat.storage.store import ChatStore

PROMPT = "Write a long story about a dragon."
LONG = 400
HELD_AT = 16


@pytest.fixture
def held_at_token(tmp_path: Path) -> ProcessHold:
    """The app's reply is held once HELD_AT tokens are out, so a signal lands mid-reply."""
    return ProcessHold(tmp_path / "gate", "token", HELD_AT)


@pytest.fixture
def app_terminal(isolated_home: Path, held_at_token: ProcessHold):
    presets = paths.user_dir("samplers")
    presets.mkdir(parents=True)
    (presets / "LongGreedy.toml").write_text(f"temp = 0.0\nmax_len_tokens = {LONG}\n")
    args = ["-f", "chatml", "-s", "LongGreedy", "-c", "2048"]
    term = Terminal(args, isolated_home, held_at_token.env)
    yield term
    for pid in (term.pid, *_children(term.pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(term.pid, 0)
    os.close(term.fd)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (its new parent, init, may not have reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1][:1] != "Z"
    except OSError:
        return False


def _stored() -> list[tuple[str, str]]:
    path = paths.data_dir() / "chats.sqlite3"
    if not path.exists():
        return []
    with ChatStore(path) as store:
        chats = store.chats()
        return [(m.role, m.content) for m in store.messages(chats[0].id)] if chats else []


def _start_a_reply(term: Terminal, gate: ProcessHold) -> int:
    """Type the prompt once the app is ready; return the app's pid (the guard's child) once
    the reply is held mid-stream."""
    term.expect(b"\x1b[?1049h")
    ready = term.expect(b"Reroll")  # the chat's keys show in the footer once the model is loaded
    (app_pid,) = _children(term.pid)
    term.type(PROMPT)
    term.expect(PROMPT.encode(), after=ready)  # the prompt box shows it: keys reach the app
    term.type(ENTER)
    assert gate.wait_held(app_pid) == f"token {HELD_AT}"
    return app_pid


def _greedy_reply(model: ez.Model, saved: str) -> str:
    """What the app writes, from a fresh run of the same model, format and sampler (what
    LongGreedy.toml holds), as far as the saved reply goes and a few tokens more."""
    length = min(len(model.tokenize(saved, add_bos=False)) + 4, LONG)
    sampler = ez.SamplerSettings(temp=0.0, max_len_tokens=length)
    return ez.Thread(model, "chatml", sampler).send(PROMPT)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_mid_reply_keeps_the_reply_and_gives_the_terminal_back(
    app_terminal: Terminal, held_at_token: ProcessHold, signum: int, model: ez.Model
) -> None:
    app_pid = _start_a_reply(app_terminal, held_at_token)
    os.kill(app_pid, signum)
    held_at_token.release(app_pid)  # the app's reply goes on until the signal stops it
    assert app_terminal.wait() == 128 + signum
    assert b"\x1b[?1049l" in app_terminal.screen  # the app left the alternate screen itself
    (user, bot) = _stored()
    assert user == ("user", PROMPT)
    assert bot[0] == "bot" and bot[1].strip()
    assert _greedy_reply(model, bot[1]).startswith(bot[1])


def test_the_guard_killed_mid_reply_ends_the_app_with_the_reply_saved(
    app_terminal: Terminal, held_at_token: ProcessHold, model: ez.Model
) -> None:
    app_pid = _start_a_reply(app_terminal, held_at_token)
    os.kill(app_terminal.pid, signal.SIGKILL)
    os.waitpid(app_terminal.pid, 0)
    held_at_token.release(app_pid)
    while _running(app_pid):  # until the app ends, which it must on its own
        app_terminal.read(0.1)
    (user, bot) = _stored()
    assert user == ("user", PROMPT)
    assert bot[0] == "bot" and bot[1].strip()
    assert _greedy_reply(model, bot[1]).startswith(bot[1])
