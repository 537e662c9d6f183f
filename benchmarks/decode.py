"""Decode tokens/s: ezchat's streaming ``Thread`` reply vs raw llama-cpp-python
``create_completion(stream=True)`` vs llama.cpp's ``llama-bench`` (the limit), same model, same
threads, greedy. Targets: >= 0.97 of raw, >= 0.93 of llama-bench.

    python benchmarks/decode.py [--n-gpu-layers -1] [--flash-attn]
"""

from __future__ import annotations

import argparse
from functools import partial

import llama_bench
from common import (
    THREADS,
    default_model_path,
    ezchat_model,
    greedy,
    median,
    print_table,
    rate,
    raw_llama,
    raw_stream,
    timed,
)

import ezchat as ez

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
TOKENS = 128
CONTEXT = 256


def main(n_gpu_layers: int = 0, flash_attn: bool = False, rounds: int = 5) -> dict[str, float]:
    """Each round runs the three one after another, so a busy spell on a shared machine hits
    all three alike; the figures are the medians of the rounds."""
    options = {"n_gpu_layers": n_gpu_layers, "flash_attn": flash_attn}
    # The context llama-bench makes for tg128 @ d46: the KV cache's size shows in the decode
    # speed (without flash attention V is stored transposed, its rows n_ctx apart), about 3%
    # between 256 and 2048 cells on this CPU, so all three get the same.
    model = ezchat_model(CONTEXT, **options)
    raw = raw_llama(CONTEXT, **options)
    ours_rates, raw_rates, bench_rates, paired_ratios = [], [], [], []
    for _ in range(rounds):
        thread = ez.Thread(model, "auto", greedy(TOKENS))
        thread.add_message("user", PROMPT)
        clock, events, _ = timed(thread.start_reply)
        prompt = thread.last_plan.tokens
        raw_clock, _, _ = timed(partial(raw_stream, raw, prompt, max_tokens=len(events)))
        ours_rates.append(rate(clock.intervals, clock.decode_seconds))
        raw_rates.append(rate(raw_clock.intervals, raw_clock.decode_seconds))
        bench = llama_bench.decode_tokens_per_second(
            default_model_path(),
            THREADS,
            TOKENS,
            flash_attn=flash_attn,
            n_gpu_layers=n_gpu_layers,
            repetitions=1,
            depth=len(prompt),
        )
        if bench is not None:
            bench_rates.append(bench)
            paired_ratios.append(ours_rates[-1] / bench)
    model.unload()
    del raw
    ours, theirs = median(ours_rates), median(raw_rates)
    bench_value = median(bench_rates)
    paired = median(paired_ratios)
    where = f"n_gpu_layers={n_gpu_layers}, flash_attn={flash_attn}, threads={THREADS}"
    print_table(
        f"decode tokens/s, greedy, {TOKENS} tokens, context {CONTEXT} ({where}), "
        f"median of {rounds} rounds",
        ["path", "tokens/s", "ezchat / this", "target"],
        [
            ["ezchat Thread (streamed)", ours, 1.0, ""],
            ["llama-cpp-python create_completion", theirs, ours / theirs, ">= 0.97"],
            [
                f"llama.cpp llama-bench tg{TOKENS} @ d{len(prompt)} (after the same prompt)",
                bench_value,
                ours / bench_value,
                ">= 0.93",
            ],
            ["  (median of each round's ezchat / llama-bench)", "", paired, ""],
        ],
    )
    return {"ezchat": ours, "raw": theirs, "llama-bench": bench_value}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument("--flash-attn", action="store_true")
    args = parser.parse_args()
    main(args.n_gpu_layers, args.flash_attn)
