"""A 30-turn greedy chat on the default model.

Per turn: the tokens ezchat evaluated against the tokens that were new since the last turn
(target <= 1.05 on every turn that drops nothing), and decode tokens/s of ``Thread`` against raw
llama-cpp-python's ``create_completion`` on the same prompt tokens, in the same run
(target >= 0.97 overall).
"""

from __future__ import annotations

from functools import partial

from common import ezchat_model, greedy, print_table, rate, raw_llama, raw_stream, timed

import ezchat as ez

TOPICS = [
    "the ocean",
    "volcanoes",
    "honey bees",
    "the moon",
    "trains",
    "coffee",
    "chess",
    "rain",
    "libraries",
    "bicycles",
    "mountains",
    "bread",
    "owls",
    "lighthouses",
    "music",
    "gardens",
    "comets",
    "rivers",
    "deserts",
    "clocks",
    "paper",
    "glass",
    "salt",
    "wind",
    "maps",
    "bridges",
    "snow",
    "tea",
    "stars",
    "forests",
]
REPLY_TOKENS = 96


def main(turns: int = 30, context_length: int = 4096) -> dict[str, float]:
    model = ezchat_model(context_length)
    raw = raw_llama(context_length)
    thread = ez.Thread(model, "auto", greedy(REPLY_TOKENS))
    rows = []
    ours_tokens = ours_seconds = raw_tokens = raw_seconds = 0.0
    worst_ratio = 0.0
    for turn, topic in enumerate(TOPICS[:turns], start=1):
        thread.add_message("user", f"Tell me three facts about {topic}.")
        cached_before = len(model.cached_tokens)
        clock, events, reply = timed(thread.start_reply)
        result = reply.result
        report = result.prompt
        plan = thread.last_plan
        new = report.prompt_tokens - cached_before if plan.dropped == 0 else report.prompt_tokens
        ratio = report.evaluated / new if new else float("nan")
        if plan.dropped == 0:
            worst_ratio = max(worst_ratio, ratio)

        raw_clock, raw_chunks, _ = timed(
            partial(raw_stream, raw, plan.tokens, max_tokens=len(result.tokens))
        )
        same = "".join(raw_chunks) == result.text
        ours_tokens += clock.intervals
        ours_seconds += clock.decode_seconds
        raw_tokens += raw_clock.intervals
        raw_seconds += raw_clock.decode_seconds
        rows.append(
            [
                turn,
                report.prompt_tokens,
                new,
                report.evaluated,
                ratio,
                plan.dropped,
                len(result.tokens),
                rate(clock.intervals, clock.decode_seconds),
                rate(raw_clock.intervals, raw_clock.decode_seconds),
                "yes" if same else "NO",
            ]
        )
    print_table(
        f"30-turn greedy chat (context {context_length}, replies up to {REPLY_TOKENS} tokens)",
        [
            "turn",
            "prompt",
            "new",
            "evaluated",
            "eval/new",
            "dropped",
            "reply",
            "ezchat tok/s",
            "raw tok/s",
            "same text",
        ],
        rows,
    )
    ours, theirs = rate(ours_tokens, ours_seconds), rate(raw_tokens, raw_seconds)
    summary = {
        "worst eval/new": worst_ratio,
        "ezchat decode tok/s": ours,
        "raw decode tok/s": theirs,
        "decode ratio": ours / theirs,
    }
    print_table(
        "turns summary",
        ["figure", "value", "target"],
        [
            ["worst evaluated/new (turns that drop nothing)", worst_ratio, "<= 1.05"],
            ["ezchat Thread decode tok/s", ours, ""],
            ["raw create_completion decode tok/s", theirs, ""],
            ["decode ratio ezchat/raw", ours / theirs, ">= 0.97"],
        ],
    )
    model.unload()
    return summary


if __name__ == "__main__":
    main()
