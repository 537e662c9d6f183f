"""What every runner shares: the model, sampler and cache, examples loaded as data, and the
call that turns strings into responses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EzChatError, PromptTooLongError
from . import data as data_module
from .cache import ResponseCache
from .execution import Job, RunStats, execute, prepare, runner_sampler
from .progress import BatchProgress
from .prompts import Prompt
from .responses import Response, Responses
from .typed import OutputType, TypedOutputError

if TYPE_CHECKING:
    from rich.console import Console

    from ..backends.base import Backend
    from ..chat.formats import Format
    from ..chat.samplers import SamplerSettings
    from ..engine.model import Model

CacheChoice = bool | str | Path | ResponseCache


def load_model_for(model: Backend | str | Path | None) -> Backend:
    """A model from a Model or RemoteModel, a path, or None (the configured default: a model
    file, or a server)."""
    from ..session import ChatOptions, load_model

    if model is not None and not isinstance(model, str | Path):
        return model
    return load_model(ChatOptions(model=model).with_config())


def open_cache(cache: CacheChoice) -> ResponseCache | None:
    if cache is False or cache is None:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    return ResponseCache(None if cache is True else cache)


class Runner:
    """Base of the runners: ``runner("text")``, ``runner(["a", "b"])``, ``output_type=...``."""

    def __init__(
        self,
        model: Model | str | Path | None = None,
        sampler: SamplerSettings | None = None,
        *,
        cache: CacheChoice = True,
        parallel: int = 16,
        progress: bool = False,
        console: Console | None = None,
    ) -> None:
        self.model = load_model_for(model)
        self.console = console  # where the progress bar and summaries go (default: stderr)
        self.sampler = runner_sampler(sampler)
        self.cache = open_cache(cache)
        self.parallel = max(1, parallel)
        self.progress = progress
        self.examples: list[data_module.Example] = []
        self.last_responses = Responses()
        self.last_stats = RunStats()

    # --- subclasses say how a string becomes a prompt ---------------------------------------

    format: Format | None = None  # None: prompts go to the model as written

    @property
    def format_name(self) -> str:
        return self.format.name if self.format is not None else "raw"

    def make_prompt(self, text: str) -> Prompt:
        raise NotImplementedError

    def history(self) -> list[tuple[str, str]]:
        """(role, text) turns that come before each prompt; runners put few-shot examples here."""
        return []

    # --- running ----------------------------------------------------------------------------

    def run_prompts(
        self,
        prompts: Sequence[Prompt],
        output_type: Any = None,
        *,
        parallel: int | None = None,
        progress: bool | None = None,
        on_response: Callable[[Response], None] | None = None,
    ) -> Responses:
        """Run prompts that need no earlier replies (in one batch when ``parallel`` > 1);
        ``on_response`` sees each Response as soon as it is done."""
        typed = OutputType(output_type) if output_type is not None else None
        jobs = self.make_jobs(prompts, typed)
        self.last_stats = RunStats()
        show = self.progress if progress is None else progress
        with BatchProgress(len(jobs), enabled=show, console=self.console) as bar:

            def finished(response: Response) -> None:
                bar.done()
                if on_response is not None:
                    on_response(response)

            responses = execute(
                self.model,
                jobs,
                format_name=self.format_name,
                parallel=self.parallel if parallel is None else parallel,
                cache=self.cache,
                output_type=typed,
                on_response=finished,
                on_tokens=bar.tokens,
                stats=self.last_stats,
            )
        self.last_responses = responses
        return responses

    def __call__(self, inputs: str | Sequence[str], output_type: Any = None) -> Any:
        """A string gives its reply (a parsed value with ``output_type``); a list gives a list
        of replies, with None for prompts that were skipped (see ``last_responses``)."""
        if isinstance(inputs, str):
            [response] = self.run_prompts([self.make_prompt(inputs)], output_type, parallel=1)
            if response.skipped is not None:
                raise PromptTooLongError(response.skipped)
            if response.error is not None:
                raise TypedOutputError(response.error)
            return response.output
        prompts = [self.make_prompt(text) for text in inputs]
        return self.run_prompts(prompts, output_type).outputs

    def call(self, inputs: str | Sequence[str], output_type: Any = None) -> Any:
        return self(inputs, output_type)

    # --- data -------------------------------------------------------------------------------

    def _add(self, examples: list[data_module.Example], verbose: bool) -> None:
        self.examples.extend(examples)
        if verbose:
            print(f"loaded {len(examples)} examples ({len(self.examples)} in all)")

    def load_data(self, data: Any, verbose: bool = False) -> None:
        """Add examples: strings, (input, output) pairs, or dicts with input/output keys.
        Examples with an output are shown to the model before every prompt (few-shot);
        ``evaluate()`` runs all of them."""
        self._add(data_module.examples_from(data), verbose)

    def load_data_from_jsonlines(
        self, file_path: str | Path, keys: Sequence[str] | None = None, verbose: bool = False
    ) -> None:
        """Examples from a JSONL file; ``keys`` names the input and output fields."""
        self._add(data_module.examples_from_jsonl(file_path, keys), verbose)

    def load_data_from_csv(
        self, file_path: str | Path, columns: Sequence[str] | None = None, verbose: bool = False
    ) -> None:
        """Examples from a CSV file with a header; ``columns`` names input and output."""
        self._add(data_module.examples_from_csv(file_path, columns), verbose)

    def load_data_from_dataframe(
        self, df: Any, columns: Sequence[str] | None = None, verbose: bool = False
    ) -> None:
        """Examples from a pandas DataFrame (pandas is not required otherwise)."""
        self._add(data_module.examples_from_dataframe(df, columns), verbose)

    def clear_data(self) -> None:
        self.examples.clear()

    def shots(self) -> list[data_module.Example]:
        return [example for example in self.examples if example.output is not None]

    def evaluate(self, output_type: Any = None) -> list[dict[str, Any]]:
        """Run every loaded example's input (without the few-shot examples) and compare the
        reply with the expected output."""
        examples = list(self.examples)
        saved, self.examples = self.examples, []
        try:
            responses = self.run_prompts([self.make_prompt(e.input) for e in examples], output_type)
        finally:
            self.examples = saved
        return [
            {
                "input": example.input,
                "expected": example.output,
                "output": response.output,
                "match": example.output is not None
                and str(response.output).strip() == example.output.strip(),
            }
            for example, response in zip(examples, responses, strict=True)
        ]

    def train(self, *args: Any, **kwargs: Any) -> None:
        raise EzChatError(
            "fine-tuning is outside what llama.cpp offers; train a LoRA adapter with another "
            "tool, convert it to GGUF and load it with ez.Model(path, lora_path=...)"
        )

    def make_jobs(
        self,
        prompts: Sequence[Prompt],
        output_type: OutputType | None,
        history: Sequence[tuple[str, str]] | None = None,
    ) -> list[Job]:
        """Each prompt's tokens (or why it is skipped), after ``history`` (default: the
        runner's few-shot turns)."""
        history = self.history() if history is None else history
        return [
            prepare(self.model, self.format, prompt, self.sampler, output_type, history)
            for prompt in prompts
        ]
