"""Per-token Python overhead: wall time per generated token minus the time spent inside
``llama_decode``, for ezchat's ``Thread`` and for llama-cpp-python's ``create_completion``.

On a GPU the decode itself takes ~1 ms for the default model, so this overhead decides how close
a binding gets to llama.cpp's own speed; on this CPU it is the proxy the GPU figure depends on.

``ezchat+info`` keeps every token's probability and top 10 (``token_info=True``, what a chat
asks for); the three run in turns, so each round pairs them under the same load.
"""

from __future__ import annotations

import time
from functools import partial

import llama_cpp
import llama_cpp.llama_cpp as llama_cpp_lib
from common import ezchat_model, greedy, print_table, raw_llama, raw_stream, timed

import ezchat as ez

PROMPT = "Write a long story about a lighthouse keeper and a storm."
TOKENS = 200


class DecodeTimer:
    """Wraps ``llama_decode`` (both bindings call it through the module) to sum its time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._original = llama_cpp_lib.llama_decode

    def __enter__(self) -> DecodeTimer:
        original = self._original

        def timed_decode(ctx, batch):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            status = original(ctx, batch)
            self.seconds += time.perf_counter() - start
            self.calls += 1
            return status

        llama_cpp_lib.llama_decode = timed_decode
        llama_cpp.llama_decode = timed_decode
        return self

    def __exit__(self, *exc: object) -> None:
        llama_cpp_lib.llama_decode = self._original
        llama_cpp.llama_decode = self._original

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def measure(rounds: int = 3) -> list[list[object]]:
    timer = DecodeTimer()
    with timer:  # patch before the models bind the function
        model = ezchat_model(2048)
        raw = raw_llama(2048)
        sampler = greedy(TOKENS)
        sampler.max_len_tokens = TOKENS
        thread = ez.Thread(model, "auto", sampler)
        thread.add_message("user", PROMPT)
        prompt = thread.plan_prompt().tokens
        rows = []
        generated = TOKENS
        for name in ["ezchat", "ezchat+info", "raw"] * rounds:
            if name.startswith("ezchat"):
                model.ingest(prompt)  # the prompt is cached: what follows is decode only
                timer.reset()
                start = partial(model.start, prompt, sampler=sampler, token_info=name != "ezchat")
                clock, items, _ = timed(start)
            else:
                list(raw_stream(raw, prompt, max_tokens=1))
                timer.reset()
                clock, items, _ = timed(partial(raw_stream, raw, prompt, max_tokens=generated))
            decode_calls = max(
                1, timer.calls - 1
            )  # the first call re-evaluates the last prompt token
            per_token_wall = clock.decode_seconds / max(1, clock.intervals)
            per_decode = timer.seconds / max(1, timer.calls)
            overhead_us = (per_token_wall - per_decode) * 1e6
            if name == "ezchat":
                generated = len(items)
            rows.append(
                [
                    name,
                    len(items),
                    decode_calls,
                    per_token_wall * 1e3,
                    per_decode * 1e3,
                    overhead_us,
                ]
            )
    model.unload()
    return rows


def main() -> dict[str, float]:
    rows = measure()
    print_table(
        f"per-token overhead, greedy, {TOKENS} tokens (overhead = wall per token - llama_decode)",
        [
            "binding",
            "tokens",
            "decode calls",
            "ms/token",
            "ms in llama_decode",
            "overhead us/token",
        ],
        rows,
    )
    ours = min(r[5] for r in rows if r[0] == "ezchat")
    with_info = min(r[5] for r in rows if r[0] == "ezchat+info")
    theirs = min(r[5] for r in rows if r[0] == "raw")
    print(
        f"\nbest overhead: ezchat {ours:.0f} us/token, with token info {with_info:.0f} us/token, "
        f"llama-cpp-python {theirs:.0f} us/token"
    )
    # each round's ezchat and ezchat+info ran back to back: the paired cost of token info
    plain = [r for r in rows if r[0] == "ezchat"]
    info = [r for r in rows if r[0] == "ezchat+info"]
    costs = [b[5] - a[5] for a, b in zip(plain, info, strict=True)]
    shares = [(b[5] - a[5]) / (a[4] * 1e3) for a, b in zip(plain, info, strict=True)]
    cost, share = sorted(costs)[len(costs) // 2], sorted(shares)[len(shares) // 2]
    print(
        f"token info (probability + top 10 a token): {cost:.0f} us/token, "
        f"{share:.1%} of a llama_decode here (median of {len(costs)} paired rounds)"
    )
    return {
        "ezchat overhead us": ours,
        "raw overhead us": theirs,
        "token info us": cost,
        "token info share of decode": share,
    }


if __name__ == "__main__":
    main()
