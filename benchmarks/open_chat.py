"""How fast the app opens a big stored chat, and how fast keys echo afterwards.

Two chats, made in a fresh store in a temporary EZCHAT_HOME:

- ``table``: one question and a reply holding a Markdown table of ``--rows`` rows (10,000);
- ``limit``: a reply holding as much of that table as the Markdown view renders (20,000
  characters, the default ``max_markdown_chars``): the slowest message still shown as Markdown;
- ``many``: ``--messages`` short messages (2,000), user and bot in turn, with a little Markdown.

For each it prints the time from the model being loaded to the conversation first drawn (the app
opened with ``chat_id=``; the default model loads in a tenth of a second and is not counted),
the time until the screen above the newest message has been filled (one message a frame), and
the latency from a key posted to the prompt (as the terminal driver posts it, from another
thread, 50 ms apart, or ``--key-gap`` ms) to the prompt's text changing: median and worst of
``--keys`` keys. ``--stalls`` adds each key's time and where the UI thread blocked over 50 ms.

Run it from the repo root, or with ``EZCHAT_REPO=/path/to/checkout`` to measure another
checkout with this same script (the "before" figures came from main that way). A chat whose
open takes longer than ``--timeout`` seconds is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(os.environ.get("EZCHAT_REPO") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # stall_probe, from this checkout

SIZE = (120, 40)
MARKDOWN_LIMIT = 20_000  # the default max_markdown_chars (the same figure for "before")


def table_reply(rows: int) -> str:
    lines = ["Here is the table:", "", "| # | name | value | note |", "|---|---|---|---|"]
    lines += [f"| {i} | item {i} | {i * 37 % 1000} | row *{i}* |" for i in range(1, rows + 1)]
    return "\n".join(lines) + "\n\nThat is all."


def make_store(path: Path, rows: int, messages: int, limit_chars: int) -> dict[str, int]:
    from ezchat.storage.store import ChatStore

    with ChatStore(path) as store:
        table = store.create_chat("A big table", model="SmolLM2", format="auto")
        store.add_message(table, "user", f"Give me a table of {rows} rows.")
        store.add_message(table, "bot", table_reply(rows))
        # the worst case the Markdown view still renders: a table just under the limit
        limit = store.create_chat("A table at the limit", model="SmolLM2", format="auto")
        store.add_message(limit, "user", "A table as long as Markdown is rendered, please.")
        reply = table_reply(rows)[: limit_chars - len("\n\nThat is all.")]
        store.add_message(limit, "bot", reply[: reply.rindex("\n")] + "\n\nThat is all.")
        many = store.create_chat("A long chat", model="SmolLM2", format="auto")
        for i in range(messages):
            if i % 2 == 0:
                store.add_message(many, "user", f"Question {i // 2}: what is {i} squared?")
            else:
                text = f"It is **{(i - 1) ** 2}**.\n\n- first point {i}\n- second point `{i}`"
                store.add_message(many, "bot", text)
    return {"table": table, "limit": limit, "many": many}


def timed_app_class():
    from textual.widgets import TextArea

    from ezchat.tui import EzChatApp

    class TimedApp(EzChatApp):
        def setup_timing(self) -> None:
            self.keys_sent: list[float] = []
            self.latencies: list[float] = []
            self.opened_at = 0.0
            self.shown_at = 0.0

        def on_model_loaded(self, message) -> None:
            # Textual then runs EzChatApp's own handler too (it calls the handler of every
            # class in the MRO): calling super() here opened the chat twice
            self.opened_at = self.shown_at = time.perf_counter()

        def on_text_area_changed(self, event: TextArea.Changed) -> None:
            now = time.perf_counter()
            typed = len(event.text_area.text)
            while len(self.latencies) < min(typed, len(self.keys_sent)):
                self.latencies.append((now - self.keys_sent[len(self.latencies)]) * 1000)

    return TimedApp


async def wait_until(condition, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


async def measure(
    store_path: Path,
    chat_id: int,
    keys: int,
    timeout: float,
    stalls: bool = False,
    key_gap: float = 0.05,
) -> str:
    from stall_probe import StallProbe
    from textual import events

    from ezchat.session import ChatOptions

    app = timed_app_class()(
        ChatOptions(sampler="GreedyDecoding", context_length=2048),
        chat_id=chat_id,
        store_path=store_path,
        show_timings=False,
    )
    app.setup_timing()
    probe = StallProbe()
    async with app.run_test(size=SIZE):
        if stalls:
            probe.start()
        if not await wait_until(lambda: app.ready, timeout):
            app.exit()
            return f"not open after {timeout:.0f} s"
        # older checkouts open the chat in the handler; newer ones in a worker, until app.ready
        app.shown_at = max(app.shown_at, time.perf_counter())
        # call_after_refresh runs once the screen has been drawn with the conversation
        drawn: list[float] = []
        app.call_after_refresh(lambda: drawn.append(time.perf_counter()))
        if not await wait_until(lambda: bool(drawn), timeout):
            app.exit()
            return (
                f"mounted in {app.shown_at - app.opened_at:.2f} s, not drawn {timeout:.0f} s later"
            )
        open_seconds = drawn[0] - app.opened_at

        def press_keys() -> None:
            for i in range(keys):
                char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
                app.keys_sent.append(time.perf_counter())
                app.post_message(events.Key(char, char))
                time.sleep(key_gap)

        # the keys go in from the first paint on, while the screen above the newest message
        # fills (getattr: the "before" checkout has no filling)
        conversation = app.query_one("#conversation")
        filled_at = None if getattr(conversation, "filling", False) else drawn[0]
        presser = threading.Thread(target=press_keys)
        presser.start()
        while presser.is_alive() or (
            filled_at is None and time.perf_counter() < drawn[0] + timeout
        ):
            if filled_at is None and not conversation.filling:
                filled_at = time.perf_counter()
            await asyncio.sleep(0.02)
        presser.join()
        await wait_until(lambda: len(app.latencies) >= keys, timeout)
        latencies = app.latencies or [float("nan")]
        probe.stop()
        filled = "" if filled_at is None else f", screen full {filled_at - app.opened_at:.2f} s"
        stall_lines = ""
        if stalls:
            keys_at = [
                f"+{sent - app.opened_at:.2f} s {latency:.0f} ms"
                for sent, latency in zip(app.keys_sent, app.latencies, strict=False)
            ]
            stall_lines = "\n  keys (sent, echo): " + ", ".join(keys_at)
            stall_lines += "\n" + probe.report(since=app.opened_at)
        return (
            f"open {open_seconds:.2f} s (mount {app.shown_at - app.opened_at:.2f} s{filled}), "
            f"key echo median {statistics.median(latencies):.1f} ms, "
            f"worst {max(latencies):.1f} ms over {len(app.latencies)} keys{stall_lines}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument(
        "--key-gap", type=float, default=50, help="milliseconds between keys (a slow typist: 400)"
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", choices=["table", "limit", "many"], help="measure one chat")
    parser.add_argument(
        "--stalls",
        action="store_true",
        help="also report where the UI thread blocked over 50 ms (benchmarks/stall_probe.py)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["EZCHAT_HOME"] = home
        store_path = Path(home) / "chats.db"
        chats = make_store(store_path, args.rows, args.messages, MARKDOWN_LIMIT)
        print(f"ezchat from {REPO}")
        for name, chat_id in chats.items():
            if args.only and name != args.only:
                continue
            what = {
                "table": f"{args.rows}-row table",
                "limit": f"table of {MARKDOWN_LIMIT:,} characters",
                "many": f"{args.messages} messages",
            }[name]
            try:
                result = asyncio.run(
                    measure(
                        store_path,
                        chat_id,
                        args.keys,
                        args.timeout,
                        args.stalls,
                        args.key_gap / 1000,
                    )
                )
            except Exception as error:  # a crash in the app under test is a result too
                result = f"failed: {type(error).__name__}: {error}"
            print(f"{what}: {result}", flush=True)


if __name__ == "__main__":
    main()
