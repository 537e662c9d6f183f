"""The terminal chat behind ``Thread.interact()`` and ``ezchat chat``, on prompt-toolkit.

While the bot writes, Ctrl-C stops it (the partial reply is kept; Enter then rerolls it). At
the prompt, Ctrl-C or Ctrl-D ends the chat. ``<`` prefixes the bot's next reply, ``!!`` adds a
system message, ``!`` opens the command prompt (``help`` lists the commands) and a line ending
in ``\\`` continues on the next line. Input history is kept in the user data dir (Ctrl-R
searches it). Piped input is read line by line and piped output is plain text.

Everything printed goes through ``visible`` (ezchat.safetext): the replies, a loaded chat, the
model's name and errors quoting files can hold terminal controls, which are shown as pictures,
never obeyed; the Thread (and ``!save``) keep the raw text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import ColorDepth, Output, create_output
from prompt_toolkit.styles import Style

from . import utf8
from .chat import formats, samplers
from .chat.reasoning import parse_thinking, thinking_label
from .chat.reply import Reply
from .chat.reply_kind import ReplyKind
from .chat.samplers import FIELD_INFO, SamplerSettings
from .chat.thread import Thread
from .errors import EzChatError, InvalidTextError, PromptTooLongError, UserFileError
from .interrupt import CancelOnSigint
from .safetext import VisibleStream, visible
from .settings import paths
from .settings.config import MAX_GROW, load_config
from .storage.chatfile import read_chat_file, write_chat_file

HISTORY_FILE = "repl_history"
STYLE = Style.from_dict(
    {
        "user": "ansigreen bold",
        "bot": "ansicyan",
        "system": "ansiyellow",
        "note": "ansibrightblack",
        "error": "ansired bold",
    }
)
INTRO = (
    "Ctrl-C stops a reply or quits | !help lists commands | < prefixes the next reply | "
    "!! adds a system message | end a line with \\ to continue it"
)
# A reply's reasoning is shown dim (SGR 2, and 22 to end it): prompt-toolkit's styles have no
# dim, and the reasoning should read as set apart from the answer, not as another speaker.
DIM_ON, DIM_OFF = "\x1b[2m", "\x1b[22m"
STOPPED_HINT = "(stopped: press Enter to reroll the reply, or type a message)"
SUMMARY_REQUEST = "Summarise this conversation in a few sentences:"
_ROLE_LABELS = {"system": "system", "user": "you", "bot": "bot"}


def history_path() -> Path:
    return paths.data_dir() / HISTORY_FILE


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


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Printer:
    """Writes to the chat's output file, in colour only when asked for and it is a terminal."""

    def __init__(self, file: TextIO, color: bool) -> None:
        self.file = file
        self._output = create_output(stdout=file) if color and _is_tty(file) else None

    @property
    def color(self) -> bool:
        return self._output is not None

    def write(self, text: str, style: str = "") -> None:
        text = visible(text)  # the one way out to the terminal
        if not text:
            return
        if style == "reasoning":
            self.file.write(f"{DIM_ON}{text}{DIM_OFF}" if self._output is not None else text)
            self.file.flush()
        elif self._output is not None and style:
            fragments = FormattedText([(f"class:{style}", text)])
            print_formatted_text(fragments, style=STYLE, output=self._output, end="")
        else:
            self.file.write(text)
            self.file.flush()

    def line(self, text: str = "", style: str = "") -> None:
        self.write(text + "\n", style)


class _ReplyPrinter:
    """A streamed reply on the printer: its reasoning dim, then its answer on a line of its
    own. Each part has its own VisibleStream (a CR ending one token waits for the next)."""

    def __init__(self, out: _Printer) -> None:
        self.out = out
        self._reasoning = VisibleStream()
        self._answer = VisibleStream()
        self._reasoned = False
        self._answered = False

    def write(self, reasoning: str, answer: str) -> None:
        if reasoning:
            self._reasoned = True
            self.out.write(self._reasoning.push(reasoning), "reasoning")
        if not answer:
            return
        if self._reasoned and not self._answered:
            # the answer starts on a line below the reasoning, its leading blank lines aside
            answer = answer.lstrip()
            if not answer:
                return
            self.out.write(self._reasoning.finish(), "reasoning")
            self.out.line()
        self._answered = True
        self.out.write(self._answer.push(answer), "bot")

    def finish(self) -> None:
        self.out.write(self._reasoning.finish(), "reasoning")
        self.out.write(self._answer.finish(), "bot")


class _PromptReader:
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
        )

    def read(self, label: str, style: str) -> str:
        message = FormattedText([(f"class:{style}", label)]) if self.color else label
        return utf8.check(self.session.prompt(message), "the line typed")


class _PlainReader:
    """Lines from a pipe (or a notebook's input box): no prompt, no history; the end of the
    input ends the chat."""

    interactive = False

    def __init__(self) -> None:
        self.line = 0

    def read(self, label: str, style: str) -> str:
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


class _Command:
    def __init__(self, run: Callable[[str], None], usage: str, help: str) -> None:
        self.run = run
        self.usage = usage
        self.help = help


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
        self.out = _Printer(file or sys.stdout, color)
        if input is None and output is None and not _is_tty(sys.stdin):
            self.reader: _PromptReader | _PlainReader = _PlainReader()
        else:
            self.reader = _PromptReader(color, input, output)
        self.prefix = ""  # how the bot's next reply starts, set with `<`
        self.stopped = False  # the last reply was cut short: an empty Enter rerolls it
        self.running = True
        self.commands = self._command_table()

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
                text = self.read_lines("> ", "user")
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

    def read_lines(self, label: str, style: str) -> str:
        """One input, continued over several lines while a line ends with a backslash."""
        lines = [self.reader.read(label, style)]
        while lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1]
            lines.append(self.reader.read("… ", style))
        return "\n".join(lines)

    def read_sub_prompt(self, label: str, style: str) -> str | None:
        """A second prompt (command, prefix, system message); Ctrl-C there cancels only it."""
        try:
            return self.read_lines(label, style)
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
                line = self.read_sub_prompt("command> ", "note") or ""
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
            printer = _ReplyPrinter(self.out)
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

    def _command_table(self) -> dict[str, _Command]:
        return {
            "help": _Command(self.cmd_help, "help", "list the commands"),
            "reroll": _Command(self.cmd_reroll, "reroll", "write the last reply again"),
            "continue": _Command(self.cmd_continue, "continue", "extend the last reply"),
            "alt": _Command(self.cmd_alt, "alt [N]", "grow N alternative replies, pick one"),
            "undo": _Command(self.cmd_undo, "undo", "remove the last message"),
            "reset": _Command(self.cmd_reset, "reset", "clear the chat (keeps the system prompt)"),
            "stats": _Command(self.cmd_stats, "stats", "context use and the last reply's speed"),
            "prompt": _Command(self.cmd_prompt, "prompt", "show the prompt text the model sees"),
            "sampler": _Command(self.cmd_sampler, "sampler", "show the sampler settings"),
            "preset": _Command(self.cmd_preset, "preset NAME", "use a sampler preset"),
            "format": _Command(self.cmd_format, "format NAME", "use a prompt format (or auto)"),
            "think": _Command(
                self.cmd_think, "think on|off|default", "switch the model's thinking, if it can"
            ),
            "save": _Command(self.cmd_save, "save FILE", "save the chat as JSON"),
            "load": _Command(self.cmd_load, "load FILE", "load a chat saved with save"),
            "summarise": _Command(
                self.cmd_summarise, "summarise", "ask the model for a summary (chat unchanged)"
            ),
            "quit": _Command(self.cmd_quit, "quit", "end the chat"),
        }

    _ALIASES = {
        "?": "help",
        "remove": "undo",
        "pop": "undo",
        "clear": "reset",
        "summarize": "summarise",
        "summary": "summarise",
        "exit": "quit",
        "q": "quit",
    }

    def run_command(self, line: str) -> None:
        name, _, arg = line.strip().partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in FIELD_INFO:
            self.set_sampler_value(name, arg)
            return
        command = self.commands.get(self._ALIASES.get(name, name))
        if command is None:
            self.error(f"unknown command {name!r}; type !help for the list")
            return
        try:
            command.run(arg)
        except EzChatError as exc:
            self.error(exc)

    def cmd_help(self, arg: str) -> None:
        width = max(len(c.usage) for c in self.commands.values())
        for command in self.commands.values():
            self.out.line(f"  {command.usage:<{width}}  {command.help}")
        self.out.line(f"  {'NAME VALUE':<{width}}  change one sampler setting, e.g. temp 0.7")
        self.out.line(f"  {'':<{width}}  ({', '.join(FIELD_INFO)})")

    def cmd_reroll(self, arg: str) -> None:
        self.generate(lambda: self.thread.start(ReplyKind.REROLL))

    def cmd_alt(self, arg: str) -> None:
        """Grow N replies at once (Ctrl-C stops all, keeping each part), list them, and make
        the one picked the conversation's; each stays in the tree as a sibling."""
        if arg and not (arg.isdigit() and 1 <= int(arg) <= MAX_GROW):
            raise EzChatError(f"!alt takes how many replies to grow, 1 to {MAX_GROW}, like !alt 3")
        n = int(arg) if arg else load_config().grow
        with CancelOnSigint() as interrupt:
            grown = self.thread.grow(n)
            interrupt.watch(grown)
            self.note(f"(growing {n} replies at once; Ctrl-C stops them all)")
            grown.run()
        for i, message in enumerate(grown.messages, start=1):
            self.out.line(f"{i}) {_preview(message['content'], 300)}")
        answer = self.read_sub_prompt(f"pick 1-{n} (Enter: 1)> ", "note") or "1"
        choice = answer.strip() or "1"
        if not choice.isdigit():
            raise EzChatError(f"pick a reply by its number, 1 to {n}; reply 1 stays the one")
        grown.pick(int(choice) - 1)
        self.stopped = False
        self.note(f"(reply {choice} of {n} continues the chat; the others stay in the tree)")

    def cmd_continue(self, arg: str) -> None:
        self.generate(lambda: self.thread.start(ReplyKind.CONTINUE))

    def cmd_undo(self, arg: str) -> None:
        if not self.thread.messages:
            raise EzChatError("there is no message to remove")
        removed = self.thread.messages.pop()
        self.note(f"(removed the {removed['role']} message: {_preview(removed['content'])})")

    def cmd_reset(self, arg: str) -> None:
        self.thread.reset()
        self.prefix = ""
        self.stopped = False
        self.note(f"(chat cleared; {len(self.thread.messages)} message(s) kept)")

    def cmd_stats(self, arg: str) -> None:
        self.thread.print_stats(file=self.out.file)
        thread = self.thread
        self.out.line(f"{thread.format_choice.lines()[0]}; sampler {thread.sampler.name}")
        if thread.format_choice.warning:
            self.out.line(f"warning: {thread.format_choice.warning}", "error")
        result = thread.last_result
        if result is not None:
            report = result.prompt
            self.out.line(
                f"last reply: {result.n_generated} tokens at {result.tokens_per_second:.1f} "
                f"tokens/s ({result.stop_reason}); prompt {report.prompt_tokens} tokens, "
                f"{report.evaluated} evaluated, {report.reused} reused"
            )

    def cmd_prompt(self, arg: str) -> None:
        self.out.line(self.thread.inference_str_from_messages())

    def cmd_sampler(self, arg: str) -> None:
        if arg:
            self.cmd_preset(arg)
            return
        sampler = self.thread.sampler
        self.out.line(f"sampler {sampler.name}")
        for name, info in FIELD_INFO.items():
            self.out.line(f"  {name} = {getattr(sampler, name)!r}  ({info.help})")

    def set_sampler_value(self, name: str, arg: str) -> None:
        info = FIELD_INFO[name]
        if not arg:
            value = getattr(self.thread.sampler, name)
            self.out.line(f"{name} = {value!r}  ({info.help})")
            return
        try:
            value = samplers.parse_value(name, arg)
            self.thread.sampler = self.thread.sampler.replace(**{name: value})
        except ValueError as exc:
            self.error(f"{exc}; {name} is unchanged")
            return
        self.note(f"({name} = {value!r})")

    def cmd_preset(self, arg: str) -> None:
        if not arg:
            self.list_names(samplers.available(), self.thread.sampler.name, "preset NAME")
            return
        self.thread.sampler = samplers.load(arg)
        self.note(f"(sampler preset {self.thread.sampler.name})")

    def cmd_format(self, arg: str) -> None:
        if not arg:
            self.list_names(["auto", *formats.available()], self.thread.format.name, "format NAME")
            return
        self.thread.set_format(arg)
        self.show_format()

    def cmd_think(self, arg: str) -> None:
        thread = self.thread
        if not arg:  # what it is now
            arg = thinking_label(thread.thinking)
        try:
            enabled = parse_thinking(arg)
        except ValueError as exc:
            raise EzChatError(str(exc)) from None
        self.note(f"({thread.switch_thinking(enabled)})")

    def list_names(self, names: list[str], current: str, usage: str) -> None:
        marked = [f"[{n}]" if n == current else n for n in names]
        self.out.line(" ".join(marked))
        self.note(f"(the current one is in brackets; {usage} switches)")

    def cmd_save(self, arg: str) -> None:
        if not arg:
            raise UserFileError("save needs a file name, e.g. !save chat.json")
        path = write_chat_file(arg, self.thread)
        self.note(f"(saved {len(self.thread.messages)} messages to {path})")

    def cmd_load(self, arg: str) -> None:
        if not arg:
            raise UserFileError("load needs a file name, e.g. !load chat.json")
        chat = read_chat_file(arg)
        # Everything is checked before the thread changes, so a bad file changes nothing.
        sampler = None
        if chat.sampler_settings:
            try:
                sampler = SamplerSettings(**chat.sampler_settings).validate()
            except (TypeError, ValueError) as exc:
                raise UserFileError(
                    f"{arg}: bad sampler_settings ({exc}); fix or remove them"
                ) from None
        elif chat.sampler:
            sampler = samplers.load(chat.sampler)
        if chat.format and chat.format != self.thread.format.name:
            self.thread.set_format(chat.format)
        if sampler is not None:
            self.thread.sampler = sampler
        self.thread.set_thinking(chat.thinking)
        thread = self.thread
        thread.messages = [thread.message_from_dict(m) for m in chat.messages]
        self.stopped = False
        self.show_messages()
        self.note(f"(loaded {len(chat.messages)} messages from {arg})")

    def show_messages(self) -> None:
        for message in self.thread.messages:
            role = message["role"]
            self.out.write(f"{_ROLE_LABELS[role]}: ", "note")
            self.out.line(message["content"], "user" if role == "user" else role)

    def cmd_summarise(self, arg: str) -> None:
        said = [m for m in self.thread.messages if m["role"] != "system"]
        if not said:
            raise EzChatError("there is nothing to summarise yet; send a message first")
        self.note("(summary; the chat is unchanged)")
        self.generate(lambda: self._start_summary(said), main=False)

    def _start_summary(self, said: list[dict]) -> Reply:
        """A reply in a side Thread; the oldest messages are left out until the request fits."""
        for first in range(len(said)):
            transcript = "\n".join(
                f"{_ROLE_LABELS[m['role']]}: {m['content']}" for m in said[first:]
            )
            side = Thread(self.thread.model, self.thread.format, self.thread.sampler, messages=[])
            side.add_message("user", f"{SUMMARY_REQUEST}\n\n{transcript}")
            try:
                return side.start_reply()
            except PromptTooLongError:
                if first == len(said) - 1:
                    raise
        raise AssertionError("unreachable")

    def cmd_quit(self, arg: str) -> None:
        self.running = False

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

    def error(self, error: Exception | str) -> None:
        self.out.line(f"error: {error}", "error")


def _preview(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
