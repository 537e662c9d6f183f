"""Make the README's screenshots from the real app on the default model, headless.

    python screenshots/make_screenshots.py [OUTPUT_DIR]

    python screenshots/make_screenshots.py --loading [OUTPUT_DIR]

    python screenshots/make_screenshots.py --tree [OUTPUT_DIR]

Writes SVGs (and PNGs when cairosvg is installed: pip install cairosvg) of the main screen
mid-chat with live candidates, a reply's tokens being inspected, the context pane, the
sampler form and the chat list; with ``--loading``, only the loading screen (held before
llama.cpp reads the first tensor, which on the default model it does in a tenth of a second)
and the same screen after a broken model file; with ``--tree``, only the tree screen after a
reply, two rerolls and a follow-up. Chats go to a temporary EZCHAT_HOME, not yours.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

SIZE = (130, 42)


async def wait_until(pilot, condition, steps: int = 2400) -> None:
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.05)
    raise TimeoutError("the app did not get there in time")


async def make(out: Path) -> list[Path]:
    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp

    shots: list[Path] = []
    app = EzChatApp(ChatOptions(sampler="GreedyDecoding", seed=1234))

    def shot(name: str) -> None:
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
        shots.append(path)
        print("wrote", path)

    async def send(pilot, text: str, wait: bool = True) -> None:
        app.query_one("#input").insert(text)
        await pilot.press("enter")
        if wait:
            await wait_until(pilot, lambda: not app.generating)
            await pilot.pause(0.2)

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.thread is not None)
        app.query_one("#input").cursor_blink = False
        app.thread.sampler.max_len_tokens = 60
        await send(pilot, "What is the capital of France?")
        app.thread.sampler.max_len_tokens = 400
        await send(pilot, "Write a short Python function that reverses a string.", wait=False)
        await wait_until(
            pilot,
            lambda: (
                app.conversation.views[-1].role == "bot"
                and len(app.conversation.views[-1].content) > 120
            ),
        )
        await pilot.pause(0.3)
        shot("main-streaming")
        await wait_until(pilot, lambda: not app.generating)
        await pilot.pause(0.3)

        await pilot.press("f8")
        await pilot.pause(0.5)
        await pilot.press(*["left"] * 6)
        await pilot.pause(0.8)
        shot("candidates-inspect")

        app.query_one("#input").focus()
        app.screen.maximize(app.query_one("#context"))
        await pilot.pause(0.3)
        shot("context-pane")
        app.screen.minimize()
        await pilot.pause(0.2)

        await pilot.press("f2")
        await pilot.pause(0.5)
        shot("sampler-form")
        await pilot.press("escape")
        await pilot.pause(0.2)

        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        app.thread.sampler.max_len_tokens = 30
        await send(pilot, "Suggest a name for a grey cat.")
        await pilot.press("f5")
        await pilot.pause(0.5)
        shot("chat-list")
        await pilot.press("escape")
    return shots


async def make_loading(out: Path) -> list[Path]:
    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp

    shots: list[Path] = []

    def shot(app: EzChatApp, name: str) -> None:
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
        shots.append(path)
        print("wrote", path)

    app = EzChatApp(ChatOptions(sampler="GreedyDecoding"))
    app._model_lock.acquire()  # the load waits here, so the screen is caught before it ends
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.6)
        shot(app, "loading")
        app._model_lock.release()
        await wait_until(pilot, lambda: app.thread is not None)

    with tempfile.TemporaryDirectory() as folder:
        broken = Path(folder) / "broken.gguf"
        broken.write_bytes(b"GGUF" + bytes(12))
        app = EzChatApp(ChatOptions(model=broken))
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: getattr(app.screen, "failed", False))
            await pilot.pause(0.2)
            shot(app, "loading-error")
    return shots


async def make_tree(out: Path) -> list[Path]:
    from ezchat.session import ChatOptions
    from ezchat.tui import EzChatApp

    app = EzChatApp(ChatOptions(sampler="HighTempSampling", seed=77))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready)
        chat = app.chat_screen
        chat.query_one("#input").cursor_blink = False
        chat.thread.sampler.max_len_tokens = 40

        async def send(text: str) -> None:
            chat.query_one("#input").insert(text)
            await pilot.press("enter")
            await wait_until(pilot, lambda: not chat.generating)
            await pilot.pause(0.2)

        await send("Tell me something about cats.")
        for _ in range(2):
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            await wait_until(pilot, lambda: not chat.generating)
        await send("And about dogs?")
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "TreeScreen")
        await pilot.pause(0.3)
        await pilot.press("k", "k", "k", "b", "k")  # bookmark the first reroll
        await pilot.pause(0.3)
        path = out / "tree-screen.svg"
        app.save_screenshot(filename=path.name, path=str(out))
        print("wrote", path)
    return [path]


def to_png(svgs: list[Path]) -> None:
    try:
        import cairosvg
    except ImportError:
        print("cairosvg is not installed (pip install cairosvg): PNGs skipped")
        return
    for svg in svgs:
        png = svg.with_suffix(".png")
        cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=1600)
        print("wrote", png)


def main() -> None:
    args = sys.argv[1:]
    loading = "--loading" in args
    tree = "--tree" in args
    args = [arg for arg in args if arg not in {"--loading", "--tree"}]
    out = Path(args[0] if args else Path(__file__).parent).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        os.environ["EZCHAT_HOME"] = home
        maker = make_loading if loading else make_tree if tree else make
        svgs = asyncio.run(maker(out))
    to_png(svgs)


if __name__ == "__main__":
    main()
