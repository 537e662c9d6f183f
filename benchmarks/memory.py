"""Peak resident memory: ezchat vs raw llama-cpp-python, same model and context, each in its own
fresh process (a reply of 32 tokens, so the KV cache and buffers are all allocated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import print_table

HERE = Path(__file__).resolve().parent

CHILD = """
import sys
sys.path.insert(0, {here!r})
from common import ezchat_model, greedy, peak_rss_mb, raw_llama, raw_stream
import ezchat as ez
before = peak_rss_mb()
if {which!r} == "ezchat":
    model = ezchat_model({n_ctx})
    ez.Thread(model, "auto", greedy(32)).send("Tell me about the sea.")
else:
    llama = raw_llama({n_ctx})
    list(raw_stream(llama, "<|im_start|>user\\nTell me about the sea.<|im_end|>\\n<|im_start|>assistant\\n", 32))
print(before, peak_rss_mb())
"""


def peak(which: str, n_ctx: int) -> tuple[float, float]:
    code = CHILD.format(here=str(HERE), which=which, n_ctx=n_ctx)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()[-2:]
    return float(before), float(after)


def main(contexts: tuple[int, ...] = (2048, 8192)) -> dict[str, float]:
    rows = []
    ratio = 0.0
    for n_ctx in contexts:
        base_ours, ours = peak("ezchat", n_ctx)
        base_raw, raw = peak("raw", n_ctx)
        ratio = max(ratio, ours / raw)
        rows.append([n_ctx, ours, raw, ours / raw, base_ours, base_raw])
    print_table(
        "peak RSS (MB) after loading and one reply",
        ["context", "ezchat", "raw llama-cpp-python", "ratio", "ezchat imports", "raw imports"],
        rows,
    )
    return {"worst RSS ratio": ratio}


if __name__ == "__main__":
    main()
