"""What the terminal chat prints: one printer for every line (through ``visible``, in colour
only on a terminal that was asked for it) and the streamed reply, its reasoning dim."""

from __future__ import annotations

from typing import Any, TextIO

from prompt_toolkit import print_formatted_text
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output import create_output
from prompt_toolkit.styles import Style

from ..safetext import VisibleStream, visible

STYLE = Style.from_dict(
    {
        "user": "ansigreen bold",
        "bot": "ansicyan",
        "system": "ansiyellow",
        "note": "ansibrightblack",
        "error": "ansired bold",
    }
)
# A reply's reasoning is shown dim (SGR 2, and 22 to end it): prompt-toolkit's styles have no
# dim, and the reasoning should read as set apart from the answer, not as another speaker.
DIM_ON, DIM_OFF = "\x1b[2m", "\x1b[22m"
# How a loaded chat and a summary's transcript name who said each message.
ROLE_LABELS = {"system": "system", "user": "you", "bot": "bot"}


def is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Printer:
    """Writes to the chat's output file, in colour only when asked for and it is a terminal."""

    def __init__(self, file: TextIO, color: bool) -> None:
        self.file = file
        self._output = create_output(stdout=file) if color and is_tty(file) else None

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


class ReplyPrinter:
    """A streamed reply on the printer: its reasoning dim, then its answer on a line of its
    own. Each part has its own VisibleStream (a CR ending one token waits for the next)."""

    def __init__(self, out: Printer) -> None:
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
