"""Grow 4 alternatives of 64 tokens (``Model.grow``: one llama.cpp batch, one KV stream per
sequence) against 4 rerolls one after another (``Model.start`` with seeds seed + i, the same
replies token for token), and against llama.cpp's ``llama-batched-bench`` for the same shape
(the prompt shared, 64 new tokens, 1 and 4 sequences), paired round by round.

    python benchmarks/grow.py [--rounds 3] [--tokens 64] [--n 4]

ezchat's batched gain is the 4 rerolls' time over the grow's. The prompt is in the Model's
cache for both, as it is in a chat (the grow copies its cells into the 4 streams, a reroll
evaluates only its last token again), so the matching llama.cpp figure is its decoding gain:
4 x t_tg(1 sequence) / t_tg(4), which is S_TG(4) / S_TG(1). Its whole-run gain, prompt
included, is printed beside it. Goal: ezchat's gain >= 0.9 of llama.cpp's. Both sides keep
each token's top 10 (the rerolls ask for 10 candidates a token, as the grow keeps them).

A second table: what getting the prompt into the 4 streams costs, copying the Model's cache
against evaluating the prompt again in the batch, at a few prompt lengths.
"""

from __future__ import annotations

import argparse
import time

import llama_bench
from common import default_model_path, ezchat_model, median, print_table

import ezchat as ez
from ezchat.engine.grow import TOP_K, grow_sampler, start_grow

PROMPT = "The old lighthouse keeper climbed the stairs every evening. One night he saw a ship"
STORY = "Once upon a time there was a small village by the sea, where fishermen told stories. "


def rerolls(model: ez.Model, prompt: list[int], n: int, sampler: ez.SamplerSettings):
    started = time.perf_counter()
    results = [
        model.start(prompt, sampler=grow_sampler(sampler, i), candidates=TOP_K).run()
        for i in range(n)
    ]
    return time.perf_counter() - started, results


def grow(model: ez.Model, prompt: list[int], n: int, sampler: ez.SamplerSettings):
    started = time.perf_counter()
    results = model.grow(prompt, n, sampler).run()
    return time.perf_counter() - started, results


def prompt_cost(model: ez.Model, n: int) -> list[list[object]]:
    """Seconds to put a prompt into n streams: copied from the Model's cache (warm: the cache
    holds it, as in a chat; cold: evaluated there first) or evaluated in the batch."""
    sampler = ez.SamplerSettings(temp=0.8, seed=7, max_len_tokens=1)
    rows = []
    for repeats in (1, 25, 80):
        prompt = model.tokenize(STORY * repeats)
        seconds = {}
        for label, cold, reuse in (
            ("warm", False, True),
            ("cold", True, True),
            ("batch", True, False),
        ):
            times = []
            for _ in range(2):
                if cold:
                    model.reset_cache()
                else:
                    model.ingest(prompt)
                growth = start_grow(model, prompt, n, sampler, reuse_cache=reuse)
                growth.run()
                times.append(growth.prompt_report.seconds)
            seconds[label] = min(times)
        rows.append([len(prompt), seconds["warm"], seconds["cold"], seconds["batch"],
                     seconds["batch"] / seconds["warm"]])  # fmt: skip
    return rows


def main(rounds: int = 3, tokens: int = 64, n: int = 4) -> dict[str, float]:
    model = ezchat_model(2048)
    threads = model.n_threads
    # a story prompt: the model writes past 64 tokens, so every sequence makes all of them
    sampler = ez.SamplerSettings(temp=0.8, seed=11, max_len_tokens=tokens)
    prompt = model.tokenize(PROMPT)
    grow(model, prompt, 2, sampler.replace(max_len_tokens=4))  # first-call allocations
    reroll_s, grow_s, llama_tg, llama_total = [], [], [], []
    same = True
    produced = 0
    for _ in range(rounds):
        seconds, one_by_one = rerolls(model, prompt, n, sampler)
        reroll_s.append(seconds)
        seconds, grown = grow(model, prompt, n, sampler)
        grow_s.append(seconds)
        same = same and [r.tokens for r in one_by_one] == [r.tokens for r in grown]
        produced = sum(r.n_generated for r in grown)
        rows = llama_bench.shared_prompt_batched_bench(
            default_model_path(), threads, len(prompt), tokens, [1, n]
        )
        if rows:
            llama_tg.append(n * rows[1]["t_tg"] / rows[n]["t_tg"])
            llama_total.append(n * rows[1]["t"] / rows[n]["t"])
    ours = median(reroll_s) / median(grow_s)
    theirs = median(llama_tg)
    table = [
        [f"{n} rerolls one after another", median(reroll_s), produced, 1.0, "", ""],
        [f"grow {n} (one batch)", median(grow_s), produced, ours, "", ""],
        [f"llama-batched-bench, decoding ({n} x t_tg(1) / t_tg({n}))", "", "", theirs,
         ours / theirs, ">= 0.9"],
        [f"llama-batched-bench, whole run ({n} x t(1) / t({n}))", "", "", median(llama_total),
         ours / median(llama_total), ""],
    ]  # fmt: skip
    print_table(
        f"grow {n} alternatives of {tokens} tokens after a {len(prompt)}-token prompt, temp 0.8, "
        f"{threads} threads, median of {rounds} paired rounds (same replies: {same})",
        ["path", "seconds", "tokens", "gain", "of llama.cpp's", "goal"],
        table,
    )
    print_table(
        f"getting the prompt into {n} streams: copying the Model's cache or evaluating it again",
        ["prompt tokens", "copy, warm cache s", "copy, cold cache s", "evaluate in batch s",
         "batch / warm copy"],
        prompt_cost(model, n),
    )  # fmt: skip
    model.unload()
    return {"gain": ours, "llama_gain": theirs, "ratio": ours / theirs, "same": float(same)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    main(args.rounds, args.tokens, args.n)
