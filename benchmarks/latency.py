"""Turn latency over a 100-turn greedy chat at context 2048, so truncation happens many times.

Time to first token per turn: ezchat (which shifts the KV cache when old messages are dropped)
vs raw llama-cpp-python given the same prompt tokens (whose prefix cache breaks at every
truncation, so it re-evaluates everything after the dropped message). Target for ezchat: turn
100 within 1.2x of turn 2.
"""

from __future__ import annotations

from functools import partial

from common import (
    THREADS,
    default_model_path,
    ezchat_model,
    greedy,
    median,
    print_table,
    raw_llama,
    raw_stream,
    timed,
)
from llama_bench import prompt_tokens_per_second_at_depths

import ezchat as ez

REPLY_TOKENS = 48
SHOWN = {1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}


def main(turns: int = 100, context_length: int = 2048) -> dict[str, float]:
    model = ezchat_model(context_length)
    raw = raw_llama(context_length)
    thread = ez.Thread(model, "auto", greedy(REPLY_TOKENS))
    ours: list[float] = []
    theirs: list[float] = []
    rows = []
    total_dropped_turns = 0
    first_drop: int | None = None
    work: list[tuple[int, int]] = []  # per turn: (tokens already in the cache, tokens evaluated)
    for turn in range(1, turns + 1):
        thread.add_message("user", f"Turn {turn}: give me one short fact about the number {turn}.")
        clock, events, reply = timed(thread.start_reply)
        plan, report = thread.last_plan, reply.result.prompt
        raw_clock, _, _ = timed(
            partial(raw_stream, raw, plan.tokens, max_tokens=max(1, len(events)))
        )
        work.append((report.prompt_tokens - report.evaluated, report.evaluated))
        ours.append(clock.first_token_seconds)
        theirs.append(raw_clock.first_token_seconds)
        total_dropped_turns += plan.dropped > 0
        if plan.dropped > 0 and first_drop is None:
            first_drop = turn - 1  # index into ours/theirs
        if turn in SHOWN:
            rows.append(
                [
                    turn,
                    report.prompt_tokens,
                    plan.dropped,
                    report.shifted,
                    report.evaluated,
                    clock.first_token_seconds * 1e3,
                    raw_clock.first_token_seconds * 1e3,
                ]
            )
    print_table(
        f"{turns}-turn chat at context {context_length}: time to first token (ms)",
        [
            "turn",
            "prompt tokens",
            "messages dropped",
            "shifted",
            "evaluated",
            "ezchat ms",
            "raw ms",
        ],
        rows,
    )
    # A turn's cost grows with the context it attends to, truncation or not, so the fair
    # measure of truncation is the full context before the first drop against after it.
    before = slice(max(1, (first_drop or 1) - 5), first_drop or 1)
    full_before, raw_full_before = median(ours[before]), median(theirs[before])
    early, late = median(ours[1:11]), median(ours[-10:])
    raw_early, raw_late = median(theirs[1:11]), median(theirs[-10:])
    floor = llama_cpp_floor(work[1], work[-1])
    print_table(
        "turn latency summary",
        ["figure", "ezchat", "raw llama-cpp-python", "target"],
        [
            ["turn 100 / turn 2", ours[-1] / ours[1], theirs[-1] / theirs[1], "<= 1.2 (ezchat)"],
            [
                "llama.cpp's own floor for it: llama-bench, the same tokens at the same depths",
                floor,
                floor,
                "",
            ],
            [
                "median of turns 91-100 / median of turns 2-11",
                late / early,
                raw_late / raw_early,
                "",
            ],
            [
                "median of turns 91-100 / median of the 5 turns before the first drop",
                late / full_before,
                raw_late / raw_full_before,
                "",
            ],
            ["median ms, turns 91-100", late * 1e3, raw_late * 1e3, ""],
            ["turns that dropped messages", total_dropped_turns, total_dropped_turns, ""],
        ],
    )
    model.unload()
    return {"ezchat late/early": late / early, "raw late/early": raw_late / raw_early}


def llama_cpp_floor(early: tuple[int, int], late: tuple[int, int]) -> float | str:
    """What llama.cpp itself takes for the late turn's prompt against the early one's, each
    evaluated at its depth in the cache: attention reads every cached token, so a turn deep in
    a full context costs more than one near the start whatever the program around it."""
    seconds = []
    for depth, tokens in (early, late):
        rates = prompt_tokens_per_second_at_depths(
            str(default_model_path()), THREADS, tokens, [depth]
        )
        if not rates:
            return "n/a"
        seconds.append(tokens / rates[depth])
    return seconds[1] / seconds[0]


if __name__ == "__main__":
    main()
