"""llama.cpp's own ``llama-bench`` and ``llama-batched-bench``, run on the default model.

They are built by ``scripts/llama_tools.py`` from the llama.cpp that the installed
llama-cpp-python vendors, with the library's own flags (portable, no AMX, plus
``EZCHAT_CMAKE_ARGS``), so they run on this CPU and compare like with like; ``variant="native"``
builds llama.cpp's default ``-march=native`` instead, for ``benchmarks/build.py``. The first
build takes a few minutes on two cores and is reused after that.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import llama_tools  # noqa: E402

PORTABLE = llama_tools.PORTABLE
NATIVE = llama_tools.NATIVE


def ensure_built(
    quiet: bool = True, name: str = "llama-bench", variant: str = PORTABLE
) -> Path | None:
    """The llama.cpp tool ``name``, building it if needed; None (with a message) if that fails."""
    try:
        return llama_tools.ensure_built([name], variant, quiet=quiet) / name
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"{name} could not be built ({exc}); its figures are left out", file=sys.stderr)
        return None


def _run(tool: str, model: str, *options: object, variant: str = PORTABLE) -> list[dict] | None:
    """Run llama.cpp's ``tool`` on ``model`` and return its result rows (it prints JSON, or
    one JSON object a line); None, with a message, when it cannot be built or fails."""
    exe = ensure_built(name=tool, variant=variant)
    if exe is None:
        return None
    result = subprocess.run(
        [str(exe), "-m", model, *(str(option) for option in options)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(f"{tool} failed: {result.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    out = result.stdout.strip()
    if out.startswith("["):
        return json.loads(out)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def decode_tokens_per_second(
    model: str,
    threads: int | None,
    tokens: int = 128,
    flash_attn: bool = False,
    n_gpu_layers: int = 0,
    repetitions: int = 5,
    depth: int = 0,
    variant: str = PORTABLE,
) -> float | None:
    """llama-bench's text-generation figure (tg) for ``tokens`` tokens, averaged over its
    ``repetitions`` runs, after ``depth`` tokens already in the cache (a chat decodes after
    its prompt, and every cached token adds to each step's attention). ``threads=None`` leaves
    llama-bench its own default."""
    runs = _run(
        "llama-bench", model, "-p", 0, "-n", tokens, *_threads(threads), "-d", depth,
        "-r", repetitions, "-fa", int(flash_attn), "-ngl", n_gpu_layers, "-o", "json",
        variant=variant,
    )  # fmt: skip
    return float(runs[0]["avg_ts"]) if runs else None


def default_threads(model: str) -> int | None:
    """The thread count llama-bench picks when given none (llama.cpp's own default)."""
    runs = _run("llama-bench", model, "-p", 0, "-n", 1, "-r", 1, "-o", "json")
    return int(runs[0]["n_threads"]) if runs else None


def prompt_tokens_per_second(
    model: str, threads: int | None, tokens: int = 512, variant: str = PORTABLE
) -> float | None:
    """llama-bench's prompt-processing figure (pp) for ``tokens`` tokens, one repetition."""
    runs = _run(
        "llama-bench", model, "-p", tokens, "-n", 0, *_threads(threads), "-r", 1, "-o", "json",
        variant=variant,
    )  # fmt: skip
    return float(runs[0]["avg_ts"]) if runs else None


def _threads(threads: int | None) -> list[object]:
    return [] if threads is None else ["-t", threads]


def prompt_tokens_per_second_at_depths(
    model: str, threads: int, tokens: int, depths: list[int]
) -> dict[int, float] | None:
    """llama-bench's prompt-processing figure (pp) for ``tokens`` new tokens evaluated after
    ``depth`` tokens already in the cache, for each depth: what one chat turn costs llama.cpp
    itself at that point of a conversation."""
    runs = _run(
        "llama-bench", model, "-p", tokens, "-n", 0, "-d", ",".join(map(str, depths)),
        "-t", threads, "-r", 5, "-fa", 0, "-o", "json",
    )  # fmt: skip
    return {int(run["n_depth"]): float(run["avg_ts"]) for run in runs} if runs else None


def batched_generation_rates(
    model: str,
    threads: int,
    prompt_tokens: int,
    new_tokens: int,
    parallel: list[int],
    flash_attn: bool = False,
) -> dict[int, float] | None:
    """``llama-batched-bench``: for each number of sequences decoded together, the generated
    tokens per second over the whole run (prompts included), each sequence with
    ``prompt_tokens`` of its own prompt and ``new_tokens`` generated; one KV stream per
    sequence, as ezchat's batched runner uses."""
    cells = max(parallel) * (prompt_tokens + new_tokens + 256)
    rows = _run(
        "llama-batched-bench", model, "-c", cells, "-npp", prompt_tokens, "-ntg", new_tokens,
        "-npl", ",".join(map(str, parallel)), "-t", threads, "-tb", threads, "-no-kvu",
        "-fa", "on" if flash_attn else "off", "--output-format", "jsonl",
    )  # fmt: skip
    return {int(row["pl"]): row["pl"] * row["tg"] / row["t"] for row in rows} if rows else None


def shared_prompt_batched_bench(
    model: str, threads: int, prompt_tokens: int, new_tokens: int, parallel: list[int]
) -> dict[int, dict] | None:
    """``llama-batched-bench -pps``: one prompt of ``prompt_tokens`` evaluated once and shared
    by every sequence, then ``new_tokens`` decoded in each, one KV stream per sequence (the
    shape of ezchat's grow); its rows (``t_tg``, ``speed_tg``, ``t``...) by sequence count."""
    cells = max(parallel) * (prompt_tokens + new_tokens + 256)
    rows = _run(
        "llama-batched-bench", model, "-c", cells, "-npp", prompt_tokens, "-ntg", new_tokens,
        "-npl", ",".join(map(str, parallel)), "-t", threads, "-tb", threads, "-no-kvu", "-pps",
        "-fa", "off", "--output-format", "jsonl",
    )  # fmt: skip
    return {int(row["pl"]): row for row in rows} if rows else None


if __name__ == "__main__":
    path = ensure_built(quiet=False)
    print(path or "not built")
