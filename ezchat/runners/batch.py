"""``BatchRunner``: a PromptCollection through the model, several prompts per llama.cpp batch,
with a progress bar and a printed summary."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chat import ChatRunner
from .prompts import PromptCollection
from .responses import Response, Responses

if TYPE_CHECKING:
    from rich.console import Console

    from ..chat.formats import Format
    from ..chat.samplers import SamplerSettings
    from ..engine.model import Model
    from .base import CacheChoice


class BatchRunner(ChatRunner):
    """``BatchRunner(model, sampler).run(collection)`` answers every prompt of a
    ``PromptCollection`` (each with its own system prompt and rendered template) and returns
    their Responses in order. ``parallel`` prompts run at once in one batch (1: one after
    another). The progress bar goes to stderr unless ``progress=False``."""

    def __init__(
        self,
        model: Model | str | Path | None = None,
        sampler: SamplerSettings | None = None,
        format: Format | Mapping[str, Any] | str = "auto",
        *,
        cache: CacheChoice = True,
        parallel: int = 16,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        super().__init__(
            model,
            None,
            format,
            sampler,
            cache=cache,
            parallel=parallel,
            progress=progress,
            console=console,
        )

    def run(
        self,
        collection: PromptCollection,
        output_type: Any = None,
        on_response: Callable[[Response], None] | None = None,
    ) -> Responses:
        """Answer every prompt. ``on_response`` sees each Response as soon as it is done (in
        the order they finish), e.g. to write it out before the run ends."""
        return self.run_prompts(collection, output_type, on_response=on_response)

    def print_response_summary(self, console: Console | None = None) -> None:
        """Print the last run's responses (also ``responses.print_response_summary()``)."""
        self.last_responses.print_response_summary(console or self.console)
