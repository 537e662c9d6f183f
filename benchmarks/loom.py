"""The loom's costs: switching between two branches that share a 1,500-token prefix (tokens
evaluated, target only the divergent part, and the time), against evaluating the whole path
again and against raw llama-cpp-python re-sending the other branch's prompt (its own prefix
cache helps it too); and the saved tree's bytes a token for probabilities plus the top 10."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import ezchat_model, greedy, print_table, raw_llama

import ezchat as ez
from ezchat.chat.tree import Made, Origin, TokenInfo
from ezchat.storage.chats import chat_from_thread, thread_from_store
from ezchat.storage.tokeninfo import pack_token_info

ROUNDS = 5
PREFIX_TOKENS = 1500


def _long_question(model: ez.Model) -> str:
    sentence = "The river bends past the old mill, where the miller keeps his ledgers. "
    text = ""
    while len(model.tokenize(text, add_bos=False)) < PREFIX_TOKENS - 40:
        text += sentence
    return text + "\nIn one sentence: what does the miller keep?"


def main() -> dict[str, float]:
    model = ezchat_model(4096)
    raw = raw_llama(4096)
    thread = ez.Thread(model, ez.formats.chatml, greedy(64))
    thread.send(_long_question(model))
    first = thread.node_at(-1)
    thread.send("And where is the mill?")
    leaf_a = thread.tree.active
    thread.switch_to(first)
    thread.tree.truncate_to(first)
    thread.start_reroll(sampler=ez.SamplerSettings(temp=1.0, seed=5, max_len_tokens=64)).run()
    thread.send("And who works there?")
    leaf_b = thread.tree.active
    paths = {}
    for name, leaf in (("a", leaf_a), ("b", leaf_b)):
        thread.switch_to(leaf)
        paths[name] = thread._tokens_for(list(thread.messages), add_generation_prompt=False)
    shared = 0
    for left, right in zip(paths["a"], paths["b"], strict=False):
        if left != right:
            break
        shared += 1

    switch_ms, evaluated, full_ms, raw_ms = [], [], [], []
    for _ in range(ROUNDS):
        for leaf, other, leaf_other in ((leaf_a, "b", leaf_b), (leaf_b, "a", leaf_a)):
            mine = paths["a" if other == "b" else "b"]
            # ezchat: the cache holds the other branch; switch and evaluate the new path
            thread.switch_to(leaf_other)
            thread.evaluate_path()
            thread.switch_to(leaf)
            start = time.perf_counter()
            report = thread.evaluate_path()
            switch_ms.append((time.perf_counter() - start) * 1e3)
            evaluated.append(report.evaluated)
            # the same path evaluated whole, as a switch without prefix reuse would
            model.reset_cache()
            start = time.perf_counter()
            model.ingest(mine)
            full_ms.append((time.perf_counter() - start) * 1e3)
            # raw llama-cpp-python: the other branch's prompt is cached; send this one
            raw.create_completion(paths[other], max_tokens=1, temperature=0.0)
            start = time.perf_counter()
            raw.create_completion(mine, max_tokens=1, temperature=0.0)
            raw_ms.append((time.perf_counter() - start) * 1e3)

    divergent = statistics.median(len(paths[n]) - shared for n in ("a", "b"))
    rows = [
        [
            "ezchat switch (evaluate_path)",
            statistics.median(evaluated),
            statistics.median(switch_ms),
        ],
        ["ezchat, the whole path again", len(paths["a"]), statistics.median(full_ms)],
        ["raw llama-cpp-python, re-send the path", "-", statistics.median(raw_ms)],
    ]
    print_table(
        f"switching branches that share {shared} tokens ({divergent:.0f} divergent), "
        f"median of {ROUNDS} paired rounds x 2 directions",
        ["path", "tokens evaluated", "ms"],
        rows,
    )
    info = [TokenInfo(i, 0.5, tuple((i + j, 0.05) for j in range(10))) for i in range(1000)]
    per_token = len(pack_token_info(info)) / len(info)
    print_table(
        "stored probabilities and top 10, per generated token",
        ["what", "bytes"],
        [["TokenInfo blob (ezchat.storage.tokeninfo)", per_token]],
    )
    open_seconds = _open_big_tree(model)
    print_table(
        "opening a saved chat whose tree has 2,000 nodes (40-token replies with their top 10)",
        ["what", "ms"],
        [["ChatStore.load_tree + thread_from_store, median of 5", open_seconds * 1e3]],
    )
    return {
        "open_2000_nodes_ms": open_seconds * 1e3,
        "switch_evaluated": statistics.median(evaluated),
        "divergent_tokens": divergent,
        "switch_ms": statistics.median(switch_ms),
        "full_ms": statistics.median(full_ms),
        "raw_ms": statistics.median(raw_ms),
        "bytes_per_token": per_token,
    }


def _open_big_tree(model: ez.Model) -> float:
    """Save a chat of 2,000 nodes (500 turns, each reply with a rerolled sibling and a
    follow-up) and time opening it again."""
    thread = ez.Thread(model, ez.formats.chatml, greedy(8))
    reply_tokens = model.tokenize(" a reply of some forty tokens" * 6, add_bos=False)[:40]
    reply_text = model.detokenize(reply_tokens)
    info = [TokenInfo(t, 0.5, tuple((t + j, 0.05) for j in range(10))) for t in reply_tokens]
    while len(thread.tree) < 2000:
        thread.add_message("user", f"question {len(thread.tree)}")
        question = thread.tree.active
        for made in (Made.REPLY, Made.REROLL):
            node = thread.tree.add(question, thread.create_message("bot", reply_text), Origin(made))
            node.tokens, node.token_info = list(reply_tokens), list(info)
    seconds = []
    with tempfile.TemporaryDirectory() as folder, ez.ChatStore(Path(folder) / "c.db") as store:
        chat_id = chat_from_thread(store, thread)
        for _ in range(5):
            start = time.perf_counter()
            opened = thread_from_store(store, chat_id, model)
            seconds.append(time.perf_counter() - start)
        assert len(opened.tree) == len(thread.tree)
    return statistics.median(seconds)


if __name__ == "__main__":
    main()
