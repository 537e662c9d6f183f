"""Figures for the Textual app, on the default model, headless:

1. tokens/s of a reply streamed through the running app against raw llama-cpp-python
   ``create_completion(stream=True)`` on the same prompt, in the same run (target >= 0.95);
2. time from a key press to its handling while the bot writes, median and p99 (target p99
   < 50 ms);
3. start to first screen (the loading screen painted) and to ready (model loaded, input
   focused) in a fresh Python process (target < 1.5 s).

    python benchmarks/tui.py [--tokens 200] [--rounds 3]

Keys are posted the way Textual's driver posts them (from another thread); "handled" is when
the input box has inserted the character. On a machine shared with other work the figures
vary from run to run: take them from an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "Count from 1 to 1000, separated by commas."
SIZE = (120, 40)


def raw_rate(model_path: str, prompt: str, tokens: int) -> float:
    """Decode tokens/s of llama-cpp-python's own streaming, first to last token."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path, n_ctx=2048, verbose=False)
    stamps = []
    for _ in llama.create_completion(
        prompt, max_tokens=tokens, temperature=0.0, stream=True, stop=[]
    ):
        stamps.append(time.perf_counter())
    llama.close()
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def app_class():
    from textual.widgets import TextArea

    from ezchat.tui import EzChatApp
    from ezchat.tui.chat_screen import ChatScreen
    from ezchat.tui.events import ReplyFinished

    class TimedScreen(ChatScreen):
        """Records when the UI handles reply text."""

        async def _flush_feed(self) -> None:
            shown = self._stream_view.content if self._stream_view else ""
            await super()._flush_feed()
            if self._stream_view is not None and self._stream_view.content != shown:
                self.app.stamps.append(time.perf_counter())

        async def on_reply_finished(self, message: ReplyFinished) -> None:
            await super().on_reply_finished(message)
            # Textual would run the base class's handler again (it walks the MRO)
            message.prevent_default()
            self.app.finished_at = time.perf_counter()

    class TimedApp(EzChatApp):
        """Records when the UI handles reply text and typed keys."""

        CHAT_SCREEN = TimedScreen

        def setup_timing(self) -> None:
            self.stamps: list[float] = []
            self.finished_at = 0.0
            self.keys_sent: list[float] = []  # when key number i was posted
            self.latencies: list[float] = []

        def on_text_area_changed(self, event: TextArea.Changed) -> None:
            now = time.perf_counter()
            typed = len(event.text_area.text)
            while len(self.latencies) < min(typed, len(self.keys_sent)):
                self.latencies.append((now - self.keys_sent[len(self.latencies)]) * 1000)

    return TimedApp


async def wait_until(pilot, condition, steps: int = 6000) -> None:
    # asyncio.sleep, not pilot.pause: pause forces a screen update each time, which would
    # add redraws the real app does not do
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the app did not get there")


async def app_run(tokens: int, measure_keys: bool) -> tuple[float, float, list[float], str]:
    """One reply through the headless app: its tokens/s as the UI received it, the
    generation's own tokens/s, key latencies (ms) while it was written, and the prompt."""
    from textual import events

    from ezchat.session import ChatOptions
    from ezchat.tui.prompt_input import PromptInput

    app = app_class()(ChatOptions(sampler="GreedyDecoding", context_length=2048))
    app.setup_timing()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready)
        app.chat_screen.thread.sampler.max_len_tokens = tokens
        app.chat_screen.thread.add_message("user", PROMPT)
        prompt = app.chat_screen.thread.inference_str_from_messages()
        app.chat_screen.thread.messages.pop()
        box = app.query_one(PromptInput)
        box.insert(PROMPT)
        # posted like a key from the terminal; pilot.press would wait for the reply to end
        app.post_message(
            events.Key("enter", None)
        )  # as the terminal sends it: through the bindings
        await wait_until(pilot, lambda: app.chat_screen._reply is not None)

        def press_keys() -> None:
            # like Textual's driver: keys arrive from another thread while the bot writes
            for i in range(300):
                if not app.chat_screen.generating:
                    return
                char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
                app.keys_sent.append(time.perf_counter())
                app.post_message(events.Key(char, char))
                time.sleep(0.02)

        presser = threading.Thread(target=press_keys)
        if measure_keys:
            presser.start()
        while app.chat_screen.generating:
            await asyncio.sleep(0.05)
        if measure_keys:
            presser.join()
        await pilot.pause()
        result = app.chat_screen.thread.last_result
        # tokens reaching the screen per second, from the first shown to the end
        seconds = app.finished_at - app.stamps[0] if app.stamps else 0.0
        ui_rate = (result.n_generated - 1) / seconds if seconds > 0 else 0.0
        return ui_rate, result.tokens_per_second, list(app.latencies), prompt


def startup_times() -> tuple[float, float]:
    """Seconds from launching a Python process that runs the app to the first screen and to
    the model being ready."""
    script = (
        "import time, json, sys\n"
        "from ezchat.session import ChatOptions\n"
        "from ezchat.tui import EzChatApp\n"
        "from ezchat.tui.loading import LoadingScreen\n"
        "marks = {}\n"
        "class App(EzChatApp):\n"
        "    def on_mount(self):\n"
        "        super().on_mount()\n"
        "        self.call_after_refresh(lambda: marks.setdefault('first', time.time()))\n"
        "    async def on_model_loaded(self, m):\n"
        "        await super().on_model_loaded(m)\n"
        "        m.prevent_default()  # else Textual runs the base handler again\n"
        "        self.call_after_refresh(lambda: marks.setdefault('ready', time.time()))\n"
        "async def main():\n"
        "    app = App(ChatOptions())\n"
        "    async with app.run_test() as pilot:\n"
        "        while 'ready' not in marks:\n"
        "            await pilot.pause(0.01)\n"
        "import asyncio; asyncio.run(main()); print(json.dumps(marks))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EZCHAT_HOME": tempfile.mkdtemp()}
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout
    marks = json.loads(out.strip().splitlines()[-1])
    return marks["first"] - started, marks["ready"] - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-candidates",
        action="store_true",
        help="generate without the per-token top-k candidates (to see what they cost)",
    )
    args = parser.parse_args()
    if args.no_candidates:
        import ezchat.tui.app

        ezchat.tui.app.CANDIDATES_K = 0
    os.environ.setdefault("EZCHAT_HOME", tempfile.mkdtemp())

    import ezchat as ez

    model_path = str(ez.default_model_path())
    ui_rates, gen_rates, raw_rates, latencies = [], [], [], []
    for round_number in range(args.rounds):
        ui, gen, keys, prompt = asyncio.run(app_run(args.tokens, measure_keys=False))
        raw = raw_rate(model_path, prompt, args.tokens)
        ui_rates.append(ui)
        gen_rates.append(gen)
        raw_rates.append(raw)
        print(f"round {round_number + 1}: app {ui:.1f} tok/s (generation {gen:.1f}), raw {raw:.1f}")
    _, _, latencies, _ = asyncio.run(app_run(max(args.tokens, 400), measure_keys=True))
    first, ready = startup_times()

    ui, raw = statistics.median(ui_rates), statistics.median(raw_rates)
    print()
    print(f"streamed through the app: {ui:.1f} tok/s (median of {args.rounds})")
    print(f"raw llama-cpp-python stream: {raw:.1f} tok/s")
    print(f"ratio app / raw: {ui / raw:.3f}  (target >= 0.95)")
    gen = statistics.median(gen_rates)
    print(
        f"the generation's own rate inside the app: {gen:.1f} tok/s, {gen / raw:.3f} of raw "
        "(what the UI costs the model, without the display's timing)"
    )
    if latencies:
        print(
            f"key press to handling while the bot writes: median "
            f"{statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms "
            f"over {len(latencies)} keys  (target p99 < 50 ms)"
        )
    print(f"start to first screen: {first:.2f} s; to model ready: {ready:.2f} s  (target < 1.5 s)")


if __name__ == "__main__":
    main()
