"""ezchat on llama.cpp's own llama-server (built by scripts/llama_tools.py with the library's
flags), against what llama-server itself reports and against the local model.

- Decode tokens/s of a streamed ezchat reply through ``RemoteModel``, measured at the client,
  against llama-server's own ``timings.predicted_per_second`` for the same request (the same
  prompt tokens and length, sent raw to ``/completion`` in the same round).
- Time to first token at turn 30 of a greedy chat, on llama-server with its prompt cache
  against the local model with ezchat's KV cache.

    python benchmarks/server.py
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import THREADS, default_model_path, greedy, median, print_table, rate, timed
from turns import TOPICS

import ezchat as ez

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import llama_tools  # noqa: E402

TOKENS = 128
CONTEXT = 4096
PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def start_server(port: int) -> subprocess.Popen:
    binary = llama_tools.ensure_built(["llama-server"]) / "llama-server"
    command = [
        str(binary), "-m", default_model_path(), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(CONTEXT), "-t", str(THREADS), "--parallel", "1", "--no-webui",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("llama-server did not start")


def server_reported_rate(url: str, tokens: list[int], n_predict: int) -> float:
    """The same request, raw, greedy: llama-server's own decode rate for it."""
    body = {"prompt": tokens, "n_predict": n_predict, "temperature": 0.0, "top_k": 1,
            "stream": True, "cache_prompt": True, "ignore_eos": True}  # fmt: skip
    timings: dict = {}
    with httpx.stream("POST", f"{url}/completion", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                timings = event.get("timings") or timings
    return float(timings.get("predicted_per_second", float("nan")))


def turn_30_first_token(backend: ez.Backend) -> float:
    thread = ez.Thread(backend, ez.formats.chatml, greedy(24))
    for topic in TOPICS[:29]:
        thread.send(f"Tell me one fact about {topic}.")
    thread.add_message("user", f"Tell me one fact about {TOPICS[29]}.")
    clock, _, _ = timed(thread.start_reply)
    return clock.first_token_seconds


def main(rounds: int = 5) -> dict[str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        remote = ez.RemoteModel(url)
        ours, theirs, paired = [], [], []
        for _ in range(rounds):
            thread = ez.Thread(remote, ez.formats.chatml, greedy(TOKENS))
            thread.add_message("user", PROMPT)
            clock, events, _ = timed(thread.start_reply)
            ours.append(rate(clock.intervals, clock.decode_seconds))
            theirs.append(server_reported_rate(url, thread.last_plan.tokens, len(events)))
            paired.append(ours[-1] / theirs[-1])
        remote_ttft = turn_30_first_token(remote)
        remote.unload()
    finally:
        process.terminate()
        process.wait(timeout=10)
    local = ez.Model(default_model_path(), context_length=CONTEXT, n_threads=THREADS, seed=1)
    local_ttft = turn_30_first_token(local)
    local.unload()
    print_table(
        f"ezchat on llama-server ({THREADS} threads, context {CONTEXT}, one slot): decode "
        f"tokens/s, greedy, {TOKENS} tokens, median of {rounds} paired rounds",
        ["path", "tokens/s", "ezchat / this"],
        [
            ["ezchat RemoteModel, streamed, measured at the client", median(ours), 1.0],
            ["llama-server's own timings for the same request", median(theirs),
             median(ours) / median(theirs)],
            ["  (median of each round's ezchat / llama-server)", "", median(paired)],
        ],
    )  # fmt: skip
    print_table(
        "time to first token at turn 30 of a greedy chat (24-token replies)",
        ["backend", "ms"],
        [
            ["llama-server, its prompt cache", remote_ttft * 1000],
            ["local Model, ezchat's KV cache", local_ttft * 1000],
        ],
    )
    return {"ezchat": median(ours), "server": median(theirs)}


if __name__ == "__main__":
    main()
