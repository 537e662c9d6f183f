"""The terminal chat's loop: read a line, then send it, run its ``!command`` (through the
commands table), add a system message or set the next reply's prefix; print each reply as it
streams, Ctrl-C stopping it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from prompt_toolkit.completion import Completer
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from ..chat.reply import Reply
from ..chat.reply_kind import ReplyKind
from ..chat.samplers import FIELD_INFO
from ..chat.thread import Thread
from ..errors import EzChatError, InvalidTextError
from ..interrupt import CancelOnSigint
from . import commands
from .completion import CommandCompleter
from .output import ROLE_LABELS, Printer, ReplyPrinter, is_tty
from .readers import PlainReader, PromptReader
from .setting_commands import set_sampler_value

INTRO = (
    "Ctrl-C stops a reply or quits | !help lists commands | < prefixes the next reply | "
    "!! adds a system message | end a line with \\ to continue it"
)
STOPPED_HINT = "(stopped: press Enter to reroll the reply, or type a message)"
# Tab completes a command after "!" at the chat's prompt, and any line at "command> ".
CHAT_LINE_COMPLETER = CommandCompleter(bang=True)
COMMAND_LINE_COMPLETER = CommandCompleter(bang=False)


def interact(
    thread: Thread,
    color: bool = True,
    header: str | None = None,
    stream: bool = True,
    *,
    file: TextIO | None = None,
    input: Input | None = None,
    output: Output | None = None,
) -> bool:
    """Chat with ``thread`` in the terminal until Ctrl-C or Ctrl-D at the prompt; True when
    it was Ctrl-C (``ezchat chat`` then exits with status 130, as the CLI's interrupts do).

    ``file`` receives the bot's text (default stdout); ``input``/``output`` are prompt-toolkit's
    (default: the terminal; when stdin is not a terminal, lines are read from it plainly).
    """
    return Repl(
        thread, color=color, header=header, stream=stream, file=file, input=input, output=output
    ).run()


class Repl:
    def __init__(
        self,
        thread: Thread,
        *,
        color: bool = True,
        header: str | None = None,
        stream: bool = True,
        file: TextIO | None = None,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.thread = thread
        self.header = header
        self.stream = stream
        self.out = Printer(file or sys.stdout, color)
        if input is None and output is None and not is_tty(sys.stdin):
            self.reader: PromptReader | PlainReader = PlainReader()
        else:
            self.reader = PromptReader(color, input, output)
        self.prefix = ""  # how the bot's next reply starts, set with `<`
        self.stopped = False  # the last reply was cut short: an empty Enter rerolls it
        self.running = True

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> bool:
        """The chat until it ends; True when Ctrl-C at the prompt ended it."""
        if self.header:
            self.out.line(self.header)
        self.show_format(explained_only=True)
        if self.reader.interactive:
            self.note(INTRO)
        while self.running:
            try:
                text = self.read_lines("> ", "user", CHAT_LINE_COMPLETER)
            except KeyboardInterrupt:
                self.out.line()
                return True
            except EOFError:
                self.out.line()
                break
            except InvalidTextError as exc:  # the line is not sent; the chat goes on
                self.error(exc)
                continue
            self.handle(text)
        return False

    def read_lines(self, label: str, style: str, completer: Completer | None = None) -> str:
        """One input, continued over several lines while a line ends with a backslash;
        ``completer`` completes its first line."""
        lines = [self.reader.read(label, style, completer)]
        while lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1]
            lines.append(self.reader.read("… ", style))
        return "\n".join(lines)

    def read_sub_prompt(
        self, label: str, style: str, completer: Completer | None = None
    ) -> str | None:
        """A second prompt (command, prefix, system message); Ctrl-C there cancels only it."""
        try:
            return self.read_lines(label, style, completer)
        except KeyboardInterrupt:
            self.note("(cancelled)")
            return None
        except InvalidTextError as exc:
            self.error(exc)
            return None

    def handle(self, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            self.on_empty_enter()
        elif stripped.startswith("!!"):
            self.add_system_message(stripped[2:].strip())
        elif stripped.startswith("!"):
            line = stripped[1:].strip()
            if not line:
                line = self.read_sub_prompt("command> ", "note", COMMAND_LINE_COMPLETER) or ""
            if line.strip():
                self.run_command(line)
        elif stripped == "<":
            self.set_prefix()
        else:
            self.send(text)

    def on_empty_enter(self) -> None:
        last = self.thread.messages[-1]["role"] if self.thread.messages else None
        if last == "bot" and self.stopped:
            self.generate(lambda: self.thread.start(ReplyKind.REROLL))
        elif last == "user":  # a message still waiting for its reply
            self.reply()

    # --- replies -------------------------------------------------------------------------------

    def send(self, text: str) -> None:
        self.thread.add_message("user", text)
        if self.reply() is None and self.thread.messages[-1]["content"] == text:
            # The reply could not start: take the message back so the chat is as it was
            # (the text stays in the input history).
            self.thread.messages.pop()

    def reply(self) -> Reply | None:
        prefix, self.prefix = self.prefix, ""
        reply = self.generate(lambda: self.thread.start(ReplyKind.REPLY, prefix=prefix))
        if reply is None:
            self.prefix = prefix
        return reply

    def generate(self, start: Callable[[], Reply], *, main: bool = True) -> Reply | None:
        """Start a reply with ``start`` and print it; Ctrl-C cancels it, keeping the part
        written. Returns None when it could not start (the error is printed)."""
        with CancelOnSigint() as interrupt:
            try:
                reply = start()
            except EzChatError as exc:
                self.error(exc)
                return None
            interrupt.watch(reply)
            printer = ReplyPrinter(self.out)
            try:
                if self.stream:
                    printer.write(*reply.prefix_parts)
                    for _ in reply:
                        printer.write(*reply.parts)
                    printer.finish()
                else:
                    reply.run()
                    if reply.message is not None:
                        thought = reply.message.get("reasoning", "")
                        printer.write(thought.strip(), reply.message["content"])
            except EzChatError as exc:
                self.out.line()
                self.error(exc)
            self.out.line()
        stop_reason = reply.result.stop_reason
        if main:
            self.stopped = stop_reason == "cancelled"
        if stop_reason == "cancelled" and main:
            self.note(STOPPED_HINT)
        elif stop_reason == "length":
            self.note(
                f"(cut at max_len_tokens = {self.thread.sampler.max_len_tokens}; !continue goes on)"
            )
        elif stop_reason == "context_full":
            self.note("(the context is full; !undo or !reset to make room)")
        return reply

    # --- commands ------------------------------------------------------------------------------

    def run_command(self, line: str) -> None:
        name, _, arg = line.strip().partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in FIELD_INFO:
            set_sampler_value(self, name, arg)
            return
        command = commands.find(name)
        if command is None:
            self.error(f"unknown command {name!r}; type !help for the list")
            return
        try:
            command.handler(self, arg)
        except EzChatError as exc:
            self.error(exc)

    # --- the rest ------------------------------------------------------------------------------

    def add_system_message(self, text: str) -> None:
        if not text:
            text = self.read_sub_prompt("system> ", "system") or ""
        if text.strip():
            self.thread.add_message("system", text)
            self.note("(system message added)")

    def set_prefix(self) -> None:
        text = self.read_sub_prompt("prefix> ", "bot")
        if text is None:
            return
        self.prefix = text
        if text:
            self.note(f"(the next reply starts with {text!r})")
        else:
            self.note("(no prefix)")

    def note(self, text: str) -> None:
        self.out.line(text, "note")

    def show_format(self, explained_only: bool = False) -> None:
        """Which prompt format the chat uses and why, and a warning if it does not suit the
        model (its markers are not the model's special tokens). ``explained_only``: only when
        there is more to say than the name the header already shows (why ``auto`` picked it,
        or a warning), so piped output starts with the first reply."""
        choice = self.thread.format_choice
        if explained_only and not (choice.reason or choice.warning):
            return
        self.note(f"(prompt {choice.lines()[0]})")
        if choice.warning:
            self.out.line(f"warning: {choice.warning}", "error")

    def show_messages(self) -> None:
        """The conversation as it stands, one message after another (after ``!load``)."""
        for message in self.thread.messages:
            role = message["role"]
            self.out.write(f"{ROLE_LABELS[role]}: ", "note")
            self.out.line(message["content"], "user" if role == "user" else role)

    def error(self, error: Exception | str) -> None:
        self.out.line(f"error: {error}", "error")
