"""What rerolls, continues, branches and candidates cost once a chat is long: tokens evaluated
(target: no history tokens, only the one token whose logits are read again) and time to the
first new token, against a raw llama-cpp-python user who re-sends the prompt."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from common import ezchat_model, greedy, print_table, raw_llama, raw_stream, timed

import ezchat as ez


def _first_token(start: Callable[[], ez.thread.Reply]) -> tuple[float, ez.thread.Reply]:
    """Seconds from asking for the reply (which evaluates what is not cached) to its first
    token, and the reply, run to its end."""
    clock, _, reply = timed(start)
    return clock.first_token_seconds, reply


def main() -> dict[str, float]:
    model = ezchat_model(4096)
    raw = raw_llama(4096)
    warm = ez.SamplerSettings(temp=1.0, seed=3, max_len_tokens=32)
    thread = ez.Thread(model, "auto", greedy(64))
    for topic in ["rivers", "bread", "owls", "maps", "glass", "salt", "snow", "comets"]:
        thread.send(f"Tell me something interesting about {topic}, in detail.")
    history = thread.len_messages()
    rows = []

    seconds, reply = _first_token(partial(thread.start_reroll, sampler=warm))
    rows.append(["reroll", reply.result.prompt.evaluated, seconds * 1e3])

    seconds, reply = _first_token(partial(thread.start_reply, continue_last=True, sampler=warm))
    rows.append(["continue", reply.result.prompt.evaluated, seconds * 1e3])

    index = len(thread.messages) - 1
    start = time.perf_counter()
    candidates = thread.candidates_at(index, 3, k=10)
    rows.append(
        [
            "candidates at token 3 of the reply",
            model.last_eval.evaluated,
            (time.perf_counter() - start) * 1e3,
        ]
    )

    seconds, reply = _first_token(partial(thread.start_branch, 3, candidates[1].id, sampler=warm))
    rows.append(["branch at token 3", reply.result.prompt.evaluated, seconds * 1e3])

    # The raw user rerolls by sending the same prompt again: llama-cpp-python's prefix cache
    # also helps it, but its create_completion path evaluates the last prompt token and more.
    prompt = thread.plan_prompt().tokens
    list(raw_stream(raw, prompt, max_tokens=8))
    clock, _, _ = timed(partial(raw_stream, raw, prompt, max_tokens=8))
    rows.append(["raw llama-cpp-python re-send (reroll)", "-", clock.first_token_seconds * 1e3])

    print_table(
        f"rerolls and candidates in a chat of {history} tokens",
        ["action", "tokens evaluated", "ms to first new token"],
        rows,
    )
    model.unload()
    return {"max evaluated": max(r[1] for r in rows if isinstance(r[1], int))}


if __name__ == "__main__":
    main()
