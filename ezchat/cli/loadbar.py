"""The CLI's model loader: ``load_model`` with a progress bar on stderr. Its own module so that
every command module (the main CLI, ``batch``) imports it from here, never from each other."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from ..errors import LoadCancelled
from ..interrupt import CancelOnSigint
from ..safetext import visible
from ..session import ChatOptions, load_model
from ..settings.modelpath import resolve_model_path

EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C

if TYPE_CHECKING:
    from rich.console import Console

    from ..backends import RemoteModel
    from ..engine.model import Model


def load_model_showing_progress(
    options: ChatOptions, console: Console | None = None, after_seconds: float = 0.5
) -> Model | RemoteModel:
    """``load_model``, with a bar on stderr once the load has taken ``after_seconds`` (a big
    model from a slow disk takes a while; the default model loads before any bar would show).
    Ctrl-C stops llama.cpp between tensors, and the command exits 130."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    console = console or Console(stderr=True)
    if options.server:
        return load_model(options)
    started = time.perf_counter()
    bar: Progress | None = None
    # Ctrl-C while llama.cpp loads sets a flag, which the next progress report turns into a
    # stop between tensors. A KeyboardInterrupt raised there instead would fire inside a
    # ctypes callback ("Exception ignored on calling ctypes callback") or be lost.
    interrupt = CancelOnSigint()

    def progress(fraction: float) -> bool:
        nonlocal bar
        if interrupt.requested:
            return False
        if not console.is_terminal:
            return True
        if bar is None:
            if time.perf_counter() - started < after_seconds:
                return True
            # the file name is plain text: neither markup nor a format string for the column
            name = visible(resolve_model_path(options.model).name)
            bar = Progress(
                TextColumn("Loading {task.description}", markup=False),
                BarColumn(),
                TaskProgressColumn(),
                console=console,
                transient=True,
            )
            bar.add_task(name, total=1.0)
            bar.start()
        bar.update(bar.task_ids[0], completed=fraction)
        return True

    model = None
    try:
        with interrupt:
            try:
                model = load_model(options, progress)
            except LoadCancelled:
                if not interrupt.requested:
                    raise
    finally:
        if bar is not None:
            bar.stop()
    if interrupt.requested:  # also when it came after the last report: the load is not used
        if model is not None:
            model.unload()
        raise typer.Exit(EXIT_INTERRUPTED)
    return model
