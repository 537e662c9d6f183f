"""Batched decoding: 16 prompts through one llama.cpp batch (``ezchat.runners``, one sequence
per prompt) vs a loop of ``Model.complete``, same model, same threads, greedy. Target: >= 3x the
loop's throughput, with the same outputs token for token.

    python benchmarks/batch.py [--prompts 16] [--tokens 64]

The loop is ``Model.complete`` as it runs: each prompt evaluates what the cache lacks (the chat
template's system prompt, which every prompt here starts with, stays cached). The batch
evaluates that shared prefix once and copies it into every slot. Throughput counts generated
tokens over the whole run, prompts included.
"""

from __future__ import annotations

import argparse
import os
import time

import llama_bench
from common import default_model_path, ezchat_model, greedy, print_table, rate

from ezchat.runners import ChatRunner, PromptCollection, run_batched

PROMPTS = [
    "Tell me a fact about the moon.",
    "Write a haiku about autumn leaves.",
    "What is the capital of Italy?",
    "Explain photosynthesis in simple words.",
    "Give me three tips for learning to cook.",
    "Why is the sky blue?",
    "Describe a cat to someone who has never seen one.",
    "What does a lighthouse keeper do?",
    "Write the opening line of a mystery novel.",
    "How do airplanes stay in the air?",
    "Suggest a name for a bakery.",
    "What is the difference between weather and climate?",
    "Tell me a joke about computers.",
    "How many legs does a spider have?",
    "Summarize the story of Cinderella.",
    "What should I pack for a beach trip?",
]


# A long system prompt every prompt shares, as a dataset run with instructions or few-shot
# examples has: about 400 tokens.
LONG_SYSTEM = "You are a careful assistant. " + " ".join(
    f"Rule {i}: answer briefly and politely, and never invent facts about topic {i}."
    for i in range(20)
)


def shared_system_prompt(count: int, tokens: int) -> list[object]:
    """One row: the loop against the batch when every prompt starts with LONG_SYSTEM."""
    model = ezchat_model(4096)
    runner = ChatRunner(model, sampler=greedy(tokens), cache=False)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(count)]
    collection = PromptCollection.create_prompts([LONG_SYSTEM] * count, prompts)
    requests = [job.request for job in runner.make_jobs(collection, None)]
    model.reset_cache()
    started = time.perf_counter()
    loop = [model.complete(r.tokens, r.stops, r.sampler) for r in requests]
    loop_seconds = time.perf_counter() - started
    started = time.perf_counter()
    batched = run_batched(model, requests, parallel=count)
    batch_seconds = time.perf_counter() - started
    model.unload()
    same = sum(a.tokens == b.tokens for a, b in zip(loop, batched, strict=True))
    return [
        f"{count} prompts, each after the same {batched[0].prompt.reused}-token prefix",
        loop_seconds,
        batch_seconds,
        loop_seconds / batch_seconds,
        f"{same}/{count}",
    ]


def main(count: int = 16, tokens: int = 64) -> dict[str, float]:
    model = ezchat_model(2048)
    sampler = greedy(tokens)
    runner = ChatRunner(model, sampler=sampler, cache=False)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(count)]
    jobs = runner.make_jobs(PromptCollection.create_prompts(None, prompts), None)
    requests = [job.request for job in jobs]

    # warm up both paths (first-call allocations), then measure
    model.complete(requests[0].tokens, requests[0].stops, sampler.replace(max_len_tokens=4))
    run_batched(model, requests[:2], parallel=2)

    started = time.perf_counter()
    one_by_one = []
    model.reset_cache()
    for request in requests:
        one_by_one.append(model.complete(request.tokens, request.stops, request.sampler))
    loop_seconds = time.perf_counter() - started
    loop_tokens = sum(result.n_generated for result in one_by_one)
    loop_rate = rate(loop_tokens, loop_seconds)
    # The loop's decoding alone, prompts left out: the most a one-at-a-time loop could reach.
    decode_seconds = sum(result.decode_seconds for result in one_by_one)
    rows: list[list[object]] = [
        ["Model.complete loop", loop_seconds, loop_tokens, loop_rate, 1.0, "", ""],
        [
            "  (its decoding alone)",
            decode_seconds,
            loop_tokens,
            rate(loop_tokens, decode_seconds),
            rate(loop_tokens, decode_seconds) / loop_rate,
            "",
            "",
        ],
    ]
    figures = {"loop": loop_rate}
    generation = int(model.llama.context_params.n_threads)
    cores = os.cpu_count() or 1
    # the default (the model's decode threads, as the loop uses), then every core
    for threads in sorted({generation, cores}):
        started = time.perf_counter()
        batched = run_batched(model, requests, parallel=count, n_threads=threads)
        seconds = time.perf_counter() - started
        produced = sum(result.n_generated for result in batched)
        same = sum(a.tokens == b.tokens for a, b in zip(one_by_one, batched, strict=True))
        batch_rate = rate(produced, seconds)
        figures[f"batched_{threads}_threads"] = batch_rate
        figures[f"same_{threads}_threads"] = same / count
        label = f"run_batched, {threads} thread{'s' if threads > 1 else ''}"
        if threads == generation:
            label += " (default)"
        rows.append(
            [
                label,
                seconds,
                produced,
                batch_rate,
                batch_rate / loop_rate,
                ">= 3",
                f"{same}/{count}",
            ]
        )
    flash_attn = model.flash_attn
    model.unload()
    # llama.cpp's own batched decoding on the same machine: its gain is the most batching
    # can give here, whatever the program around it.
    mean_prompt = round(sum(len(r.tokens) for r in requests) / count)
    mean_reply = max(1, round(loop_tokens / count))
    rates = llama_bench.batched_generation_rates(
        default_model_path(), generation, mean_prompt, mean_reply, [1, count], flash_attn
    )
    if rates:
        figures["llama_cpp_ceiling"] = rates[count] / rates[1]
        rows.append(
            [
                f"llama-batched-bench, {count} sequences vs 1 ({mean_prompt}-token prompts, "
                f"{mean_reply} new)",
                "",
                "",
                rates[count],
                rates[count] / rates[1],
                "",
                "",
            ]
        )
    print_table(
        f"batched decoding: {count} prompts, up to {tokens} tokens each, greedy "
        f"(the loop decodes with {generation} thread{'s' if generation > 1 else ''})",
        ["path", "seconds", "tokens", "tokens/s", "x loop", "target", "same outputs"],
        rows,
    )
    row = shared_system_prompt(count, tokens)
    figures["shared_prefix"] = row[3]
    print_table(
        "a shared system prompt: evaluated once in the batch, copied into every slot",
        ["run", "loop s", "run_batched s", "x loop", "same outputs"],
        [row],
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    main(args.prompts, args.tokens)
