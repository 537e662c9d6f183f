"""The REPL's commands table: !help, the aliases, Tab completion and the README all read it.
Driven through the real prompt (prompt-toolkit reading keys from a pipe) on the default model."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from test_repl import CTRL_C, ENTER, INTRO, Terminal, _plain, chat

import ezchat as ez
from ezchat.chat import formats, samplers
from ezchat.chat.samplers import FIELD_INFO
from ezchat.repl.commands import COMMANDS
from ezchat.repl.completion import CommandCompleter

ROOT = Path(__file__).resolve().parent.parent
TAB = "\t"


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings) -> ez.Thread:
    return ez.Thread(model, "chatml", greedy)


def completions(text: str, bang: bool = True) -> list[str]:
    completer = CommandCompleter(bang=bang)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_help_prints_every_row_of_the_table(thread: ez.Thread) -> None:
    out = chat(thread, f"!help{ENTER}")
    for command in COMMANDS.values():
        assert re.search(rf"^  {re.escape(command.usage)} +{re.escape(command.help)}$", out, re.M)
    assert ", ".join(FIELD_INFO) in out  # each sampler setting is a command too


def test_every_alias_runs_its_command(thread: ez.Thread) -> None:
    help_out = chat(thread, f"!help{ENTER}")
    assert chat(thread, f"!?{ENTER}") == help_out
    thread.add_message("user", "Hello!")
    out = chat(thread, f"!pop{ENTER}")
    assert "(removed the user message: 'Hello!')" in out and not thread.messages
    for command in COMMANDS.values():
        for alias in command.aliases:
            assert alias not in COMMANDS, f"{alias} names two commands"


def test_completion_offers_the_tables_names_then_argument_values() -> None:
    names = [*COMMANDS, *FIELD_INFO]
    assert completions("!re") == [n for n in names if n.startswith("re")]
    assert "reroll" in completions("!re") and "temp" in completions("!te")
    assert completions("!think o") == ["on", "off"]
    assert completions("!format ") == ["auto", *formats.available()]
    assert completions("!preset ") == samplers.available()
    assert completions("res", bang=False) == ["reset"]  # the command> prompt: no "!"
    # a message, a system message and a command's second word complete nothing
    assert completions("re") == []
    assert completions("!!re") == []
    assert completions("!save a b") == []


def test_tab_at_the_real_prompt_completes_and_runs_the_command(thread: ez.Thread) -> None:
    # "!stat" has one completion, "!stats": Tab writes it out and Enter runs it
    (only,) = completions("!stat")
    out = chat(thread, f"!stat{TAB}{ENTER}")
    assert f"{thread.format_choice.lines()[0]}; sampler {thread.sampler.name}" in out
    assert "unknown command" not in out and only == "stats"


@pytest.fixture
def terminal(isolated_home: Path) -> Iterator[Terminal]:
    term = Terminal(["chat", "-f", "chatml", "-s", "GreedyDecoding", "-c", "2048"], isolated_home)
    yield term
    try:
        os.kill(term.pid, signal.SIGKILL)
        os.waitpid(term.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    os.close(term.fd)


def test_in_a_terminal_tab_lists_the_choices_then_completes_the_one(terminal: Terminal) -> None:
    at = terminal.expect(INTRO.encode())
    at = terminal.expect(b"> ", at)
    terminal.type(f"!think {TAB}")  # several values: listed above the prompt, as a shell does
    at = terminal.expect(b"default", at)
    # the list is printed with the terminal out of raw mode; keys typed before the prompt is
    # drawn again would meet the terminal's own line editing (its Ctrl-U)
    at = terminal.expect(b"!think", at)
    terminal.type(f"\x15!stat{TAB}{ENTER}")  # Ctrl-U clears the line; one name: written out
    at = terminal.expect(b"tokens in the context", at)
    shown = _plain(terminal.screen)
    assert re.search(r"^on +off +default\s*$", shown, re.M)  # think's values, from the table
    assert "unknown command" not in shown
    terminal.type(CTRL_C)
    assert terminal.wait() == 130


def test_the_readme_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("| command | does |")[2].partition("\n\n")[0]
    listed = set(re.findall(r"^\| `(\w+)", section, re.M)) | set(re.findall(r"/ `(\w+)", section))
    assert set(COMMANDS) <= listed, set(COMMANDS) - listed
