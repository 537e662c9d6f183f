"""``ezchat prompt``: the exact prompt text a format makes of a conversation."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..chat import formats
from ..safetext import visible
from ..session import ChatOptions, make_thread
from ..settings.config import load_config
from ..storage.chatfile import ChatFile, parse_chat_text, read_chat_file
from .loadbar import load_model_showing_progress
from .options import (
    FormatOption,
    ModelOption,
    apply_template_limits,
    prepare,
    read_stdin,
    root_model,
)


def prompt(
    ctx: typer.Context,
    messages: Annotated[
        str,
        typer.Argument(
            metavar="MESSAGES.json",
            help='[{"role": ..., "content": ...}, ...] or a chat saved by the REPL; - for stdin',
        ),
    ],
    format: FormatOption = None,
    model: ModelOption = None,
    generation_prompt: Annotated[
        bool,
        typer.Option(
            "--generation-prompt/--no-generation-prompt",
            help="end with the start of the bot's turn",
        ),
    ] = True,
) -> None:
    """Print the exact prompt text a format makes of a conversation."""
    chat = _read_messages(messages)
    name = format or chat.format or load_config().format or "auto"
    if name.lower() == "auto":
        options = prepare(ChatOptions(model=model or root_model(ctx), format="auto"))
        fmt = make_thread(load_model_showing_progress(options), options).format
    else:
        config = load_config()
        apply_template_limits(config.template_timeout, config.template_memory_mb)
        fmt = formats.load(name)
    # exact but for terminal controls, which a chat template or the messages can hold
    sys.stdout.write(visible(fmt.render(chat.messages, add_generation_prompt=generation_prompt)))


def _read_messages(source: str) -> ChatFile:
    if source == "-":
        return parse_chat_text(read_stdin(), "stdin")
    return read_chat_file(source)
