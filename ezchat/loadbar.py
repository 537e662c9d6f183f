"""The CLI's model loader: ``load_model`` with a progress bar on stderr. Its own module so that
every command module (the main CLI, ``batch``) imports it from here, never from each other."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .modelpath import resolve_model_path
from .safetext import visible
from .session import ChatOptions, load_model

if TYPE_CHECKING:
    from rich.console import Console

    from .backends import RemoteModel
    from .model import Model


def load_model_showing_progress(
    options: ChatOptions, console: Console | None = None, after_seconds: float = 0.5
) -> Model | RemoteModel:
    """``load_model``, with a bar on stderr once the load has taken ``after_seconds`` (a big
    model from a slow disk takes a while; the default model loads before any bar would show).
    Ctrl-C stops llama.cpp between tensors."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    console = console or Console(stderr=True)
    if options.server or not console.is_terminal:
        return load_model(options)
    started = time.perf_counter()
    bar: Progress | None = None

    def progress(fraction: float) -> None:
        nonlocal bar
        if bar is None:
            if time.perf_counter() - started < after_seconds:
                return
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

    try:
        return load_model(options, progress)
    finally:
        if bar is not None:
            bar.stop()
