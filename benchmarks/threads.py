"""The default a user gets: decode tokens/s of ezchat with no thread count given (the app,
``ezchat chat`` and ``Model(path)`` all use it) against ``llama-bench`` with its own default
threads, paired round by round; beside them the explicit counts. Target: >= 0.95.

llama-cpp-python's default, ``cpu_count() // 2``, is there too, to show what it cost: ezchat
used it until its own rule (``ezchat.engine.cpu.default_thread_count``) replaced it.

    python benchmarks/threads.py
"""

from __future__ import annotations

import os

import llama_bench
from common import default_model_path, greedy, median, print_table, rate, timed

import ezchat as ez
from ezchat.engine import cpu

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
TOKENS = 128
CONTEXT = 256


def ezchat_rate(model: ez.Model) -> tuple[float, int]:
    thread = ez.Thread(model, "auto", greedy(TOKENS))
    thread.add_message("user", PROMPT)
    clock, _, _ = timed(thread.start_reply)
    return rate(clock.intervals, clock.decode_seconds), len(thread.last_plan.tokens)


def main(rounds: int = 5) -> dict[str, float]:
    path = default_model_path()
    default = ez.Model(path, context_length=CONTEXT, seed=1)  # no n_threads: the user's default
    binding_default = max(1, (os.cpu_count() or 2) // 2)
    binding = ez.Model(path, context_length=CONTEXT, seed=1, n_threads=binding_default)
    bench_threads = llama_bench.default_threads(path)
    rates: dict[str, list[float]] = {"default": [], "binding": [], "bench": []}
    paired: list[float] = []
    for _ in range(rounds):
        ours, depth = ezchat_rate(default)
        theirs, _ = ezchat_rate(binding)
        bench = llama_bench.decode_tokens_per_second(path, None, TOKENS, repetitions=1, depth=depth)
        rates["default"].append(ours)
        rates["binding"].append(theirs)
        if bench is not None:
            rates["bench"].append(bench)
            paired.append(ours / bench)
    default.unload()
    binding.unload()
    chosen = cpu.default_thread_count()
    bench_value = median(rates["bench"])
    print_table(
        f"the default a user gets: decode tokens/s, greedy, {TOKENS} tokens, context {CONTEXT}, "
        f"median of {rounds} paired rounds; ezchat's default: {chosen.count} threads "
        f"({chosen.how})",
        ["path", "threads", "tokens/s", "/ llama-bench default", "target"],
        [
            ["ezchat Model(path), no thread count", default.n_threads, median(rates["default"]),
             median(rates["default"]) / bench_value, ">= 0.95"],
            ["  (median of each round's ezchat / llama-bench)", "", "", median(paired), ""],
            ["ezchat with llama-cpp-python's default (cpu_count // 2)", binding_default,
             median(rates["binding"]), median(rates["binding"]) / bench_value, ""],
            ["llama.cpp llama-bench, its default threads", bench_threads, bench_value, 1.0, ""],
        ],
    )  # fmt: skip
    return {"default": median(rates["default"]), "llama-bench": bench_value}


if __name__ == "__main__":
    main()
