"""The terminal chat (``Thread.interact``) driven for real: prompt-toolkit reads keystrokes from a
pipe (or the whole program runs in a pseudo-terminal) and the default model answers greedily."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

import ezchat as ez
from ezchat.repl import INTRO, STOPPED_HINT, Repl, history_path, interact
from ezchat.settings import paths

ROOT = Path(__file__).resolve().parent.parent
ENTER = "\r"
CTRL_C = "\x03"


class Screen(io.StringIO):
    """The chat's output file. With ``interrupt_after`` it sends this process SIGINT (as Ctrl-C
    in a terminal would) once that many characters of the first reply have been written."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        super().__init__()
        self.interrupt_after = interrupt_after
        self.interrupted_at: str | None = None

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.interrupt_after is not None and self.interrupted_at is None:
            reply = self.getvalue().partition(INTRO + "\n")[2]
            if len(reply) >= self.interrupt_after:
                self.interrupted_at = reply
                os.kill(os.getpid(), signal.SIGINT)
        return written


def chat(thread: ez.Thread, keys: str, screen: TextIO | None = None, **kwargs) -> str:
    """Type ``keys`` into the chat (closing the input at the end ends it) and return what it
    printed."""
    screen = screen or Screen()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        interact(thread, input=pipe, output=DummyOutput(), file=screen, **kwargs)
    return screen.getvalue() if isinstance(screen, Screen) else ""


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings) -> ez.Thread:
    return ez.Thread(model, "chatml", greedy)


def bot_messages(thread: ez.Thread) -> list[str]:
    return [m["content"] for m in thread.messages if m["role"] == "bot"]


def test_two_turns_print_the_replies_and_reuse_the_cache(thread: ez.Thread) -> None:
    out = chat(thread, f"What is the capital of France?{ENTER}And of Italy?{ENTER}")
    roles = [m["role"] for m in thread.messages]
    assert roles == ["user", "bot", "user", "bot"]
    first, second = bot_messages(thread)
    assert first and second
    assert "Paris" in first
    # What was printed is what the Thread recorded, in order, after the intro line.
    assert out.startswith(INTRO + "\n")
    assert out.index(first) < out.index(second)
    # The second turn evaluated only what the first left out of the cache.
    report = thread.last_result.prompt
    assert report.reused > 0 and report.evaluated < report.prompt_tokens


@pytest.mark.slow
def test_ctrl_c_mid_reply_keeps_the_partial_reply_and_enter_rerolls(
    model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    thread = ez.Thread(model, "chatml", greedy.replace(max_len_tokens=120))
    screen = Screen(interrupt_after=30)
    previous_handler = signal.getsignal(signal.SIGINT)
    keys = f"Write a long story about a dragon.{ENTER}!save cut.json{ENTER}{ENTER}"
    out = chat(thread, keys, screen)
    assert screen.interrupted_at is not None
    assert signal.getsignal(signal.SIGINT) is previous_handler  # restored after each reply
    # The reply stopped soon after Ctrl-C, its partial text kept in the chat ...
    assert out.count(STOPPED_HINT) == 1
    saved = json.loads(Path("cut.json").read_text(encoding="utf-8"))
    partial = saved["messages"][-1]
    assert partial["role"] == "bot"
    assert partial["content"].startswith(screen.interrupted_at.strip()[:30])
    # ... then Enter rerolled it: one bot message, the greedy reply written out in full.
    (final,) = bot_messages(thread)
    assert thread.last_result.stop_reason == "length"
    assert thread.last_result.n_generated == 120
    assert final.startswith(partial["content"])
    assert len(final) > len(partial["content"])


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_prefix_starts_the_next_reply(thread: ez.Thread) -> None:
    out = chat(thread, f"<{ENTER}Sure! The answer is{ENTER}What is 2 + 2?{ENTER}")
    (reply,) = bot_messages(thread)
    generated = thread.last_result.text
    assert reply == "Sure! The answer is" + generated
    assert generated.strip()
    assert "(the next reply starts with 'Sure! The answer is')" in out
    assert "Sure! The answer is" + generated in out


def test_system_messages_from_double_bang(thread: ez.Thread) -> None:
    chat(thread, f"!!{ENTER}Answer in one word.{ENTER}!! Be polite.{ENTER}")
    assert [(m["role"], m["content"]) for m in thread.messages] == [
        ("system", "Answer in one word."),
        ("system", "Be polite."),
    ]
    prompt = thread.inference_str_from_messages()
    assert "<|im_start|>system\nAnswer in one word.<|im_end|>" in prompt


def test_backslash_continues_the_line(thread: ez.Thread) -> None:
    chat(thread, f"First line\\{ENTER}second line{ENTER}")
    assert thread.messages[0]["content"] == "First line\nsecond line"
    assert thread.messages[1]["role"] == "bot"


def test_commands_help_stats_prompt_sampler_undo(thread: ez.Thread) -> None:
    keys = (
        f"!{ENTER}help{ENTER}"
        f"Hello!{ENTER}"
        f"!stats{ENTER}"
        f"!prompt{ENTER}"
        f"!temp 0.7{ENTER}!top_k 5{ENTER}!temp abc{ENTER}!temp 99{ENTER}!temp{ENTER}"
        f"!undo{ENTER}"
        f"!bogus{ENTER}"
    )
    out = chat(thread, keys)
    names = [
        "reroll",
        "continue",
        "undo",
        "reset",
        "stats",
        "prompt",
        "sampler",
        "summarise",
        "quit",
    ]
    for name in names + ["preset NAME", "format NAME", "save FILE", "load FILE"]:
        assert f"  {name} " in out
    # stats: the context used by the two messages, of the model's 2048
    assert re.search(r"^\d+ / 2048 tokens in the context \(\d+%\)$", out, re.M)
    assert "2 messages" in out
    # prompt: the exact prompt text the next reply would see
    assert "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n" in out
    # sampler values: good ones change the sampler, bad ones are refused in one line
    assert thread.sampler.temp == 0.7 and thread.sampler.top_k == 5
    assert "error: temp must be a number, got 'abc'; temp is unchanged" in out
    assert "error: temp must be between 0 and 10, got 99.0; temp is unchanged" in out
    assert "temp = 0.7  (temperature" in out
    # undo removed the bot's reply, leaving the user's message
    assert [m["role"] for m in thread.messages] == ["user"]
    assert "(removed the bot message:" in out
    assert "error: unknown command 'bogus'; type !help for the list" in out


def test_sampler_commands_refuse_nan_and_values_that_would_wrap(thread: ez.Thread) -> None:
    keys = f"!temp nan{ENTER}!top_k 100000000000000000000000{ENTER}!top_p 0.5{ENTER}"
    out = chat(thread, keys)
    assert "error: temp must be a finite number, got nan; temp is unchanged" in out
    assert "error: top_k must be between 0 and 2147483647, got 10" in out
    assert thread.sampler.temp == 0.0 and thread.sampler.top_k == 40  # unchanged
    assert thread.sampler.top_p == 0.5


def test_reroll_reset_preset_format_commands(thread: ez.Thread) -> None:
    chat(thread, f"Name a colour.{ENTER}")
    (first,) = bot_messages(thread)
    keys = (
        f"!reroll{ENTER}"
        f"!preset SimpleSampling{ENTER}!preset Nope{ENTER}"
        f"!format zephyr{ENTER}!format nope{ENTER}"
    )
    out = chat(thread, keys)
    (reply,) = bot_messages(thread)
    assert reply == first  # greedy: the reroll wrote the same reply again, in place of the first
    assert out.startswith(f"{INTRO}\n{first}\n")
    assert thread.sampler.name == "SimpleSampling"
    assert "error: unknown sampler preset 'Nope'" in out
    assert thread.format.name == "zephyr"
    assert thread.messages[0]["prefix"] == "<|user|>\n"
    assert "error: unknown format 'nope'" in out
    chat(thread, f"!reset{ENTER}")
    assert thread.messages == []


def test_save_and_load_round_trip(thread: ez.Thread, model: ez.Model, greedy) -> None:
    chat(thread, f"Hi there!{ENTER}!temp 0.3{ENTER}!save chat.json{ENTER}")
    saved = json.loads(Path("chat.json").read_text(encoding="utf-8"))
    assert saved["format"] == "chatml"
    assert saved["sampler"] == "custom"
    assert saved["sampler_settings"]["temp"] == 0.3
    assert [m["role"] for m in saved["messages"]] == ["user", "bot"]

    other = ez.Thread(model, "zephyr", greedy)
    out = chat(other, f"!load chat.json{ENTER}!load missing.json{ENTER}")
    assert [(m["role"], m["content"]) for m in other.messages] == [
        (m["role"], m["content"]) for m in thread.messages
    ]
    assert other.format.name == "chatml" and other.sampler.temp == 0.3
    assert "(loaded 2 messages from chat.json)" in out
    assert "error: missing.json: no such file; check the path" in out

    Path("bad.json").write_text('{"messages": [{"role": "user"}]}', encoding="utf-8")
    out = chat(other, f"!load bad.json{ENTER}!save{ENTER}")
    assert 'error: bad.json: message 1 needs a "role" and a "content" string' in out
    assert "error: save needs a file name, e.g. !save chat.json" in out
    assert len(other.messages) == 2  # a bad file changed nothing


@pytest.mark.slow
def test_summarise_leaves_the_chat_unchanged(thread: ez.Thread) -> None:
    chat(thread, f"My name is Ada and I like tea.{ENTER}")
    before = [dict(m) for m in thread.messages]
    out = chat(thread, f"!summarise{ENTER}")
    assert "(summary; the chat is unchanged)" in out
    summary = out.split("(summary; the chat is unchanged)\n", 1)[1].strip()
    assert summary
    assert [dict(m) for m in thread.messages] == before
    out = chat(ez.Thread(thread.model, "chatml", thread.sampler), f"!summarise{ENTER}")
    assert "error: there is nothing to summarise yet; send a message first" in out


@pytest.mark.slow
def test_a_prompt_too_long_is_refused_and_the_chat_goes_on(thread: ez.Thread) -> None:
    huge = "tea " * 3000
    out = chat(thread, f"{huge}{ENTER}Hello!{ENTER}")
    assert "error: the last message and system prompt take" in out
    assert [m["role"] for m in thread.messages] == ["user", "bot"]
    assert thread.messages[0]["content"] == "Hello!"


def test_ctrl_c_at_the_prompt_ends_the_chat(thread: ez.Thread) -> None:
    out = chat(thread, f"{CTRL_C}Hello!{ENTER}")
    assert thread.messages == []
    assert out == INTRO + "\n\n"


def test_history_is_kept_in_the_data_dir(thread: ez.Thread, isolated_home: Path) -> None:
    chat(thread, f"Remember me{ENTER}!stats{ENTER}")
    path = history_path()
    assert path == paths.data_dir() / "repl_history"
    assert path.is_relative_to(isolated_home)
    history = path.read_text(encoding="utf-8")
    assert "+Remember me" in history and "+!stats" in history
    # The next session starts with it: Up recalls the last line.
    repl = Repl(thread, input=create_pipe_input(), output=DummyOutput(), file=Screen())
    assert list(repl.reader.session.history.load_history_strings())[:2] == ["!stats", "Remember me"]


def test_header_and_no_stream(thread: ez.Thread) -> None:
    out = chat(thread, f"Hi!{ENTER}", header="Welcome", stream=False)
    assert out.startswith("Welcome\n" + INTRO)
    (reply,) = bot_messages(thread)
    assert f"{reply}\n" in out


@pytest.mark.slow
def test_colour_only_on_a_terminal_and_only_when_asked(thread: ez.Thread) -> None:
    master, slave = pty.openpty()
    shown = {}
    try:
        for color in (True, False):
            with open(os.dup(slave), "w", encoding="utf-8") as terminal:
                chat(thread, f"Hi!{ENTER}", terminal, color=color)
            shown[color] = b""
            while select.select([master], [], [], 0.2)[0]:
                shown[color] += os.read(master, 65536)
            thread.reset()
    finally:
        os.close(master)
        os.close(slave)
    assert b"\x1b[0;36m" in shown[True]  # the bot's colour (ansicyan)
    assert b"\x1b[" not in shown[False]
    assert _plain(shown[True]).replace("\r", "") == shown[False].decode().replace("\r", "")


def test_thread_interact_runs_the_repl(thread: ez.Thread, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Thread.interact`` reads from the terminal; piped stdin is read line by line."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello!\n"))
    screen = Screen()
    monkeypatch.setattr(sys, "stdout", screen)
    thread.interact(color=True, header="hi")
    (reply,) = bot_messages(thread)
    assert screen.getvalue() == f"hi\n{reply}\n\n"  # piped: plain text, no intro, no colour


# --- the whole program in a pseudo-terminal ------------------------------------------------------


class Terminal:
    """``ezchat chat`` in a pseudo-terminal, as a user runs it: keys in, screen bytes out."""

    def __init__(self, args: list[str], home: Path, env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            "EZCHAT_HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "TERM": "xterm-256color",
            **(env or {}),
        }
        env.pop("NO_COLOR", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "ezchat", *args], env)
        termios.tcsetwinsize(self.fd, (24, 100))
        self.screen = b""

    def read(self, timeout: float = 0.2) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if b"\x1b[6n" in chunk:  # prompt-toolkit asks where the cursor is: answer
                os.write(self.fd, b"\x1b[1;1R")
            self.screen += chunk

    def expect(self, pattern: bytes, after: int = 0, timeout: float = 120) -> int:
        """Wait until ``pattern`` shows after offset ``after``; return where it ends."""
        deadline = time.monotonic() + timeout
        while (found := self.screen.find(pattern, after)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never showed; screen: {self.screen[-2000:]!r}")
            self.read()
        return found + len(pattern)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"ezchat did not end; screen: {self.screen[-2000:]!r}")


def _plain(screen: bytes) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace"))


@pytest.fixture
def terminal(isolated_home: Path) -> Iterator[Terminal]:
    presets = paths.user_dir("samplers")
    presets.mkdir(parents=True)
    (presets / "LongGreedy.toml").write_text("temp = 0.0\nmax_len_tokens = 150\n")
    term = Terminal(["chat", "-f", "chatml", "-s", "LongGreedy", "-c", "2048"], isolated_home)
    yield term
    try:
        os.kill(term.pid, signal.SIGKILL)
        os.waitpid(term.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    os.close(term.fd)


def test_in_a_terminal_ctrl_c_stops_the_reply_enter_rerolls_ctrl_c_quits(
    terminal: Terminal, tmp_path: Path
) -> None:
    at = terminal.expect(INTRO.encode())
    at = terminal.expect(b"> ", at)
    terminal.type(f"Write a long story about a dragon.{ENTER}")
    at = terminal.expect(b"dragon.", at)
    # Wait for the reply to be under way, then press Ctrl-C.
    while len(_plain(terminal.screen[at:]).strip()) < 40:
        terminal.read()
    terminal.type(CTRL_C)
    at = terminal.expect(STOPPED_HINT.encode(), at)
    at = terminal.expect(b"> ", at)
    cut, whole = tmp_path / "cut.json", tmp_path / "whole.json"
    terminal.type(f"!save {cut}{ENTER}")
    at = terminal.expect(b"(saved 2 messages", at)
    at = terminal.expect(b"> ", at)
    terminal.type(ENTER)  # reroll
    at = terminal.expect(b"(cut at max_len_tokens = 150", at)
    at = terminal.expect(b"> ", at)
    terminal.type(f"!save {whole}{ENTER}")
    at = terminal.expect(b"(saved 2 messages", at)
    at = terminal.expect(b"> ", at)
    terminal.type(CTRL_C)
    # Ctrl-C at the prompt ends the chat as every CLI interrupt does: status 130, one line
    assert terminal.wait() == 130
    assert _plain(terminal.screen).rstrip().endswith("ezchat: interrupted")

    def saved(path: Path) -> list[tuple[str, str]]:
        messages = json.loads(path.read_text(encoding="utf-8"))["messages"]
        return [(m["role"], m["content"]) for m in messages]

    (_, asked), (_, partial) = saved(cut)
    assert asked == "Write a long story about a dragon."
    assert saved(whole)[0] == ("user", asked)
    (_, rerolled) = saved(whole)[1]
    assert 0 < len(partial) < len(rerolled)
    assert rerolled.startswith(partial)  # greedy: the reroll wrote the same reply, in full
    assert partial.split()[0] in _plain(terminal.screen)
    # Colours: the bot's text is styled (ansicyan) on a terminal.
    assert b"\x1b[0;36m" in terminal.screen
    history = history_path().read_text(encoding="utf-8")
    assert "+Write a long story about a dragon." in history
