"""Where the terminal chat's lines come from: a prompt-toolkit prompt (history in the user
data dir, Ctrl-R search, Tab completion of commands) or, when stdin is not a terminal, the
pipe, line by line."""

from __future__ import annotations

import sys
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, DummyCompleter
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.shortcuts import CompleteStyle

from .. import utf8
from ..settings import paths
from .output import STYLE

HISTORY_FILE = "repl_history"


def history_path() -> Path:
    return paths.data_dir() / HISTORY_FILE


class PromptReader:
    """Lines typed at a prompt-toolkit prompt, with history and Ctrl-R search."""

    interactive = True

    def __init__(self, color: bool, input: Input | None, output: Output | None) -> None:
        path = history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.color = color
        self.session: PromptSession[str] = PromptSession(
            history=FileHistory(str(path)),
            input=input,
            output=output,
            style=STYLE,
            color_depth=None if color else ColorDepth.MONOCHROME,
            # completions on Tab, listed above the prompt as a shell lists them: a menu popping
            # up under every line typed would cover the chat
            complete_while_typing=False,
            complete_style=CompleteStyle.READLINE_LIKE,
        )

    def read(self, label: str, style: str, completer: Completer | None = None) -> str:
        message = FormattedText([(f"class:{style}", label)]) if self.color else label
        # a prompt that completes nothing says so: None would keep the last prompt's completer
        text = self.session.prompt(message, completer=completer or DummyCompleter())
        return utf8.check(text, "the line typed")


class PlainReader:
    """Lines from a pipe (or a notebook's input box): no prompt, no history; the end of the
    input ends the chat."""

    interactive = False

    def __init__(self) -> None:
        self.line = 0

    def read(self, label: str, style: str, completer: Completer | None = None) -> str:
        self.line += 1
        where = f"stdin line {self.line}"
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # not a file (Jupyter's input box): input() is what works there
            return utf8.check(input(), where)
        # bytes, so that a line that is not UTF-8 is refused alone, the same in every locale
        data = buffer.readline()
        if not data:
            raise EOFError
        return utf8.decode(data.removesuffix(b"\n").removesuffix(b"\r"), where)
