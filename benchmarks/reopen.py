"""Reopening a saved ~3,000-token chat: time until it is ready to send, with the KV state saved
beside the chat against evaluating its history again, in the same run on the default model.

"Ready" means the history sits in the model's cache, so the next message costs only its own
tokens: open the store, rebuild the Thread, then either load the saved state (``restore_state``)
or evaluate the history (``Model.ingest``). The first token of the next reply is timed too, to
show both paths then cost the same.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import THREADS, ezchat_model, greedy, median, print_table

import ezchat as ez
from ezchat.storage.chats import (
    chat_from_thread,
    restore_state,
    save_thread_state,
    thread_from_store,
)
from ezchat.storage.store import ChatStore

TARGET_TOKENS = 3000
CONTEXT = 4096
REPLY_TOKENS = 48
NEXT_MESSAGE = "Thank you. Which of these points matters most, in one sentence?"
SUBJECTS = [
    "the history of lighthouses and the people who kept them",
    "how bread dough rises and why salt changes the crumb",
    "the migration of birds across deserts and open seas",
    "the way glaciers carve valleys over many thousands of years",
    "building a small wooden boat by hand in a garage",
    "how old mechanical clocks keep time with a pendulum",
    "the rules and strategy of a long game of chess",
    "why rivers bend into meanders on flat land",
    "the making of paper from rags, wood and water",
    "the life of honey bees through one summer",
]


def _notes(subject: str) -> str:
    """A long user message: notes on ``subject`` (about 350 tokens)."""
    sentences = [
        f"I have been reading about {subject}, and I wrote these notes to ask you about them.",
        "The first book I found explained the basics slowly, with drawings on every page.",
        "The second one was older and assumed the reader already knew most of the terms.",
        "Some chapters argued that the common explanation is only half of the story.",
        "Others gave numbers and dates, which I copied into a notebook to compare later.",
        "A museum guide told me a different version, and I am not sure whom to trust.",
        "My neighbour, who worked in the field for years, laughed at both versions.",
        "She said that the practice always differs from the theory in small details.",
        "I would like a clear summary, some questions to ask her, and a list of words to learn.",
    ]
    return " ".join(sentences * 3)


def build_chat(store: ChatStore, model: ez.Model) -> tuple[int, int, float]:
    """A greedy chat of at least TARGET_TOKENS tokens, saved with its state; returns the chat
    id, its length in tokens and the seconds saving the state took."""
    thread = ez.Thread(model, "auto", greedy(REPLY_TOKENS))
    chat = chat_from_thread(store, thread, "Reading notes", model=model.name)
    for subject in SUBJECTS:
        if thread.len_messages() >= TARGET_TOKENS:
            break
        text = _notes(subject)
        store.add_message(chat, "user", text)
        store.add_message(chat, "bot", thread.send(text))
    started = time.perf_counter()
    save_thread_state(store, chat, thread)
    return chat, thread.len_messages(), time.perf_counter() - started


def reopen(store_path: Path, chat: int, model: ez.Model, saved_state: bool) -> dict[str, float]:
    """Reopen the chat from a cold cache; time until ready, then the next reply's first token."""
    model.reset_cache()
    started = time.perf_counter()
    with ChatStore(store_path) as store:
        thread = thread_from_store(store, chat, model, greedy(REPLY_TOKENS))
        if saved_state:
            if not restore_state(store, chat, thread):
                raise RuntimeError("the saved state did not load")
        else:
            model.ingest(thread.plan_prompt().tokens)
    ready = time.perf_counter() - started

    thread.add_message("user", NEXT_MESSAGE)
    asked = time.perf_counter()
    reply = thread.start_reply()
    for event in reply:
        if event.id >= 0:
            reply.cancel()
            break
    first_token = time.perf_counter() - asked
    return {
        "ready": ready,
        "first_token": first_token,
        "evaluated": reply.result.prompt.evaluated,
        "reused": reply.result.prompt.reused,
    }


def main(repeats: int = 3) -> dict[str, float]:
    model = ezchat_model(CONTEXT)
    with tempfile.TemporaryDirectory() as folder:
        store_path = Path(folder) / "chats.sqlite3"
        with ChatStore(store_path) as store:
            chat, length, save_seconds = build_chat(store, model)
            state_tokens, state = store.load_state(chat, model.context_fingerprint())
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(repeats):  # alternate, so load on the machine hits both alike
            for saved_state in (True, False):
                runs[saved_state].append(reopen(store_path, chat, model, saved_state))
        file_mb = store_path.stat().st_size / 2**20
    model.unload()

    def med(saved_state: bool, key: str) -> float:
        return median([run[key] for run in runs[saved_state]])

    rows = []
    for saved_state, label in ((True, "saved state"), (False, "evaluate history")):
        rows.append(
            [
                label,
                med(saved_state, "ready"),
                med(saved_state, "first_token"),
                med(saved_state, "ready") + med(saved_state, "first_token"),
                int(med(saved_state, "evaluated")),
            ]
        )
    ratio = med(False, "ready") / med(True, "ready")
    print_table(
        f"Reopen a {length}-token chat (context {CONTEXT}, {THREADS} threads, median of "
        f"{repeats}; state {len(state) / 2**20:.1f} MiB for {len(state_tokens)} tokens, "
        f"file {file_mb:.1f} MiB)",
        ["reopen with", "ready s", "next first token s", "total s", "next prompt evaluated"],
        rows,
    )
    print(f"\nready to send: saved state is {ratio:.1f}x faster than evaluating the history")
    print(f"saving the state took {save_seconds:.3f} s")
    return {
        "chat_tokens": float(length),
        "ready_saved_s": med(True, "ready"),
        "ready_evaluate_s": med(False, "ready"),
        "ready_ratio": ratio,
        "state_mib": len(state) / 2**20,
        "save_state_s": save_seconds,
    }


if __name__ == "__main__":
    main()
