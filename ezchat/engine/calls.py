"""The easy-llama calls every backend offers (generate, complete, stream, stream_print,
print_candidates), written once on top of the backend's own ``start`` and ``candidates``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..safetext import VisibleStream

if TYPE_CHECKING:
    from ..chat.samplers import SamplerSettings
    from .results import GenerationResult


class _SupportsWriteAndFlush(Protocol):
    def write(self, s: str, /) -> Any: ...
    def flush(self) -> Any: ...


class GenerationCalls:
    """Mixed into ``Model`` and ``RemoteModel``, whose own ``start`` and ``candidates`` (the
    ``Backend`` protocol) these calls use."""

    def generate(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
    ) -> str:
        """Generate text from ``prompt`` and return it (without the stop that ended it)."""
        return self.complete(prompt, stops, sampler).text

    def complete(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
    ) -> GenerationResult:
        """Like ``generate`` but returns the full result: tokens, stop reason, timings."""
        return self.start(prompt, stops, sampler).run()

    def stream(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield llama-cpp-python style chunks; the text is ``chunk['choices'][0]['text']``."""
        generation = self.start(prompt, stops, sampler)
        for event in generation:
            if event.text:
                yield _chunk(event.text, event.id, None)
        yield _chunk("", -1, _finish_reason(generation.result.stop_reason))

    def stream_print(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
        end: str = "\n",
        file: _SupportsWriteAndFlush | None = None,
        flush: bool = True,
    ) -> str:
        """Print the reply as it is generated; return it (without ``end``). What is printed
        shows terminal controls as pictures (ezchat.safetext); the returned text is raw."""
        file = file or sys.stdout
        generation = self.start(prompt, stops, sampler)
        shown = VisibleStream()
        for event in generation:
            if event.text:
                file.write(shown.push(event.text))
                if flush:
                    file.flush()
        file.write(shown.finish() + end)
        file.flush()
        return generation.result.text

    def print_candidates(
        self, prompt: str | list[int], k: int, file: _SupportsWriteAndFlush | None = None
    ) -> None:
        file = file or sys.stdout
        for text, prob in self.candidates(prompt, k):
            print(f"token {text!r} has probability {float(prob)}", file=file)
        file.flush()


def _finish_reason(stop_reason: str) -> str:
    return "length" if stop_reason in ("length", "context_full") else "stop"


def _chunk(text: str, token: int, finish_reason: str | None) -> dict[str, Any]:
    return {
        "object": "text_completion",
        "choices": [
            {
                "text": text,
                "index": 0,
                "token": token,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
    }
