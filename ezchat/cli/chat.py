"""``ezchat`` with no command (the full-screen app, ``ezchat MODEL.gguf`` too) and ``ezchat
chat`` (the terminal chat)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ..crashguard import guard_terminal
from ..engine.gguf import read_gguf
from ..session import ChatOptions, make_thread
from ..settings.config import MAX_MARKDOWN_CHARS
from ..settings.modelpath import resolve_model_path
from .loadbar import EXIT_INTERRUPTED, load_model_showing_progress
from .options import PROG, chat_options, fail, prepare


def _show_version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


@chat_options()
def root(
    ctx: typer.Context,
    resume: Annotated[
        bool, typer.Option("--resume", help="reopen the last chat in the app")
    ] = False,
    max_markdown_chars: Annotated[
        int | None,
        typer.Option(
            "--max-markdown-chars",
            min=0,
            help="the longest message the app renders as Markdown; longer ones are plain "
            f"text (default: the config file's, then {MAX_MARKDOWN_CHARS:,})",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version"),
    ] = False,
    *,
    options: ChatOptions,
) -> None:
    """Talk to local GGUF models. With no command (or `ezchat MODEL.gguf`), opens the app."""
    ctx.obj = options
    if ctx.invoked_subcommand is not None:
        return
    options = prepare(options)
    if not options.server:
        read_gguf(resolve_model_path(options.model))  # a bad file is reported here, in one line
    try:
        from ..tui.app import run_app
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("ezchat.tui"):
            raise
        raise fail(
            "the full-screen app (ezchat.tui) is not part of this install; "
            "use 'ezchat chat' for the terminal chat"
        ) from None
    guard_terminal("the app")
    code = run_app(options, resume=resume, max_markdown_chars=max_markdown_chars)
    if code:
        raise typer.Exit(code)


@chat_options()
def chat(
    color: Annotated[bool, typer.Option("--color/--no-color", help="colour the chat")] = True,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="print replies as they are written")
    ] = True,
    *,
    options: ChatOptions,
) -> None:
    """Chat in the terminal (Ctrl-C stops a reply or quits; !help lists the commands)."""
    options = prepare(options)
    guard_terminal("the chat")
    model = load_model_showing_progress(options)
    thread = make_thread(model, options)
    from ..repl import interact

    header = (
        f"{model.description}, context {model.context_length}, "
        f"format {thread.format.name}, sampler {thread.sampler.name}"
    )
    if interact(thread, color=color, header=header, stream=stream):
        raise typer.Exit(EXIT_INTERRUPTED)  # Ctrl-C at the prompt, as every CLI interrupt
