"""What every benchmark shares: the default model, a raw llama-cpp-python baseline built with the
same settings, token timing, and printing a table.

Run from the repo root (``python benchmarks/run_all.py``); each script also runs alone.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import llama_cpp  # noqa: E402

import ezchat as ez  # noqa: E402
from ezchat.engine.results import TokenEvent  # noqa: E402

THREADS = int(os.environ.get("EZCHAT_BENCH_THREADS", os.cpu_count() or 2))


def default_model_path() -> str:
    return str(os.environ.get("EZCHAT_BENCH_MODEL") or ez.default_model_path())


def ezchat_model(context_length: int = 2048, **kwargs: object) -> ez.Model:
    return ez.Model(
        default_model_path(), context_length=context_length, n_threads=THREADS, seed=1, **kwargs
    )


def raw_llama(context_length: int = 2048, **kwargs: object) -> llama_cpp.Llama:
    """The baseline: llama-cpp-python's high-level Llama, as a user would create it."""
    return llama_cpp.Llama(
        default_model_path(),
        n_ctx=context_length,
        n_threads=THREADS,
        n_batch=512,
        seed=1,
        verbose=False,
        **kwargs,
    )


def greedy(max_tokens: int = 0) -> ez.SamplerSettings:
    return ez.SamplerSettings(temp=0.0, max_len_tokens=max_tokens)


class TokenClock:
    """Timestamps of streamed tokens: decode rate excludes the prompt and the first token, so
    both sides are measured over the same work (one decode and one sample per interval)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stamps: list[float] = []

    def tick(self) -> None:
        self.stamps.append(time.perf_counter())

    @property
    def first_token_seconds(self) -> float:
        return self.stamps[0] - self.start if self.stamps else float("nan")

    @property
    def decode_seconds(self) -> float:
        return self.stamps[-1] - self.stamps[0] if len(self.stamps) > 1 else 0.0

    @property
    def intervals(self) -> int:
        return max(0, len(self.stamps) - 1)


def timed(start: Callable[[], Iterable[object]]) -> tuple[TokenClock, list[object], object]:
    """Start a generation with ``start()`` and take its tokens, on one clock, so the time to
    the first token includes whatever ``start`` does (ezchat evaluates the prompt there,
    llama-cpp-python on the first ``next``). Returns the clock, the items and what ``start``
    returned."""
    clock = TokenClock()
    source = start()
    items = []
    for item in source:
        if isinstance(item, TokenEvent) and item.id < 0:
            continue  # text a possible stop string held back: no token of its own
        clock.tick()
        items.append(item)
    return clock, items, source


def raw_stream(llama: llama_cpp.Llama, prompt: list[int] | str, max_tokens: int) -> Iterator[str]:
    """Greedy streamed completion through ``create_completion``, one chunk per token."""
    for chunk in llama.create_completion(
        prompt, max_tokens=max_tokens, temperature=0.0, stream=True
    ):
        yield chunk["choices"][0]["text"]


def rate(tokens: int, seconds: float) -> float:
    return tokens / seconds if seconds > 0 else float("nan")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB. Linux's VmHWM belongs to the process image;
    ``ru_maxrss`` would not do: it survives exec, so a child started by a big parent reports
    the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
