"""The ``ezchat`` command: the full-screen app, the terminal chat and a few tools, on typer.
This module assembles the command from one module per command group and holds the error
convention every command shares (``EzChatGroup``).

The commands are thin: they read options, call the core and print. Every mistake a user can
make (a missing model, a bad flag value, an unknown preset, malformed JSON, a prompt too long
for the context) ends in one line on stderr and exit status 2; Ctrl-C ends with status 130.

Plain output shows text from outside ezchat (completions, GGUF metadata, preset files, file
names in errors) through ``visible`` (ezchat.safetext), so a terminal control in it is a
picture, not obeyed; ``--json`` carries the raw text, escaped.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import EzChatError
from ..safetext import one_line
from . import chat, config, listings, model_info, oneshot, prompt
from .batch import register as register_batch
from .loadbar import EXIT_INTERRUPTED
from .options import PROG

EXIT_USAGE = 2


def _one_line(text: str) -> str:
    """An error on one line; it may quote a file name or a server's reply, so visible."""
    return one_line(text)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as one visible line, as errors are: Python's own form names ezchat's file and
    line, and a warning can quote a template's words (``raise_exception``), escapes included."""
    print(f"{PROG}: warning: {one_line(str(message))}", file=file or sys.stderr)


class EzChatGroup(TyperGroup):
    """The root command: turns every user error into one stderr line and exit status 2, and
    accepts a model path as the first argument (``ezchat MODEL.gguf`` opens the app)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        return super().parse_args(ctx, self._model_path_as_option(list(args)))

    def _model_path_as_option(self, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.params
            if param.param_type_name == "option"
            and not getattr(param, "is_flag", False)
            and not getattr(param, "count", False)
            for name in param.opts
        }
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                return args
            if arg.startswith("-"):
                index += 2 if arg in takes_value else 1
                continue
            if arg not in self.commands and (arg.endswith(".gguf") or Path(arg).is_file()):
                return [*args[:index], "--model", arg, *args[index + 1 :]]
            return args
        return args

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        message = None
        try:
            code = super().main(
                args, prog_name or PROG, complete_var, standalone_mode=False, **extra
            )
            code = code if isinstance(code, int) else 0
        except typer.TyperException as exc:  # typer's (vendored click's) usage errors
            context = getattr(exc, "ctx", None)
            see = f"; see '{context.command_path} --help'" if context is not None else ""
            message, code = exc.format_message().rstrip(".") + see, EXIT_USAGE
        except typer.Abort as exc:
            code = EXIT_INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else 1
        except EzChatError as exc:
            message, code = str(exc), EXIT_USAGE
        except OSError as exc:  # a file the user named could not be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            message, code = f"{where}{exc.strerror or exc}; check the path", EXIT_USAGE
        if message:
            print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
        if code == EXIT_INTERRUPTED:
            print(f"{PROG}: interrupted", file=sys.stderr)
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(
    cls=EzChatGroup,
    name=PROG,
    help="Talk to local GGUF language models. With no command, opens the full-screen app.",
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# Commands are listed in --help in the order they are added here.
app.callback(invoke_without_command=True)(chat.root)
app.command()(chat.chat)
app.command()(oneshot.generate)
app.command()(oneshot.candidates)
app.command()(model_info.info)
app.command()(model_info.doctor)
app.command()(prompt.prompt)
app.add_typer(listings.formats_app, name="formats")
app.add_typer(listings.samplers_app, name="samplers")
app.add_typer(config.config_app, name="config")
# The runners own their command (batch); its module stays the one place that knows its options.
register_batch(app)


def main() -> None:
    """The console script ``ezchat``."""
    warnings.showwarning = _show_warning
    app(prog_name=PROG)
