"""A rich progress bar for batch runs: prompts done, and tokens per second in and out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


class BatchProgress:
    """``with BatchProgress(total) as progress: progress.tokens(n_in, n_out); progress.done()``.

    Disabled (``enabled=False``) it does nothing, so callers need no branches."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool = True,
        console: Console | None = None,
        description: str = "Processed prompts",
    ) -> None:
        self.total = total
        self.enabled = enabled and total > 0
        self.console = console
        self.description = description
        self.prompt_tokens = 0
        self.new_tokens = 0
        self._started = time.perf_counter()
        self._progress = None
        self._task = None

    def __enter__(self) -> BatchProgress:
        self._started = time.perf_counter()
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("<"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[speed]}"),
                console=self.console or Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, speed="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()
            self._progress = None

    def speed_text(self) -> str:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        return (
            f"in: {self.prompt_tokens / elapsed:.1f} tok/s, "
            f"out: {self.new_tokens / elapsed:.1f} tok/s"
        )

    def tokens(self, prompt_tokens: int, new_tokens: int) -> None:
        """Count tokens evaluated (a callback for each batch)."""
        self.prompt_tokens += prompt_tokens
        self.new_tokens += new_tokens
        self._refresh()

    def done(self, count: int = 1) -> None:
        """Count finished prompts."""
        if self._progress is not None:
            self._progress.update(self._task, advance=count, speed=self.speed_text())

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, speed=self.speed_text())
