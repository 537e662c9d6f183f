"""Helpers for the TUI tests: an app on the real default model with greedy sampling."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from ezchat.session import ChatOptions
from ezchat.tui import EzChatApp

SIZE = (120, 40)
TIMEOUT_STEPS = 1200  # x 0.05 s


def make_app(store_path: Path | None, *, sampler: str = "GreedyDecoding", **kwargs) -> EzChatApp:
    options = ChatOptions(sampler=sampler, context_length=2048, seed=1234)
    return EzChatApp(options, store_path=store_path, **kwargs)


async def wait_until(pilot: Pilot, condition, what: str) -> None:
    for _ in range(TIMEOUT_STEPS):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_loaded(pilot: Pilot, max_len_tokens: int = 24) -> EzChatApp:
    app = pilot.app
    await wait_until(pilot, lambda: app.ready, "the model to load")
    await wait_counted(pilot)
    app.chat_screen.thread.sampler.max_len_tokens = max_len_tokens
    return app


async def wait_idle(pilot: Pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: not app.chat_screen.generating, "the reply to finish")
    await wait_counted(pilot)


async def wait_counted(pilot: Pilot) -> None:
    """Wait for the context pane's count (it runs in a worker) to be shown, and the screen
    above the newest message to be filled (one message a frame)."""
    pane = pilot.app.query_one("#context")
    conversation = pilot.app.query_one("#conversation")
    await pilot.pause()
    await wait_until(pilot, lambda: not pane.counting, "the context pane's count")
    await wait_until(pilot, lambda: not conversation.filling, "the screen to fill")
    await pilot.pause()


async def send(pilot: Pilot, text: str, wait: bool = True) -> None:
    """Type ``text`` and press Enter. ``wait=False`` returns as soon as the key is posted:
    ``pilot.press`` would wait until the app has no pending messages, which while a reply
    streams can be its end."""
    app = pilot.app
    box = app.query_one("#input")
    box.insert(text)
    if wait:
        await pilot.press("enter")
        await wait_idle(pilot)
    else:
        app.post_message(
            events.Key("enter", None)
        )  # as the terminal sends it: through the bindings
        await wait_until(pilot, lambda: app.chat_screen.generating, "the reply to start")


async def palette_command(pilot: Pilot, title: str) -> None:
    """Open the command palette, search for ``title`` and run the command once it is the
    highlighted hit (the palette searches in a worker)."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    commands = app.screen.query_one(CommandList)
    await pilot.press(*title)

    def highlighted() -> str:
        if not commands.option_count or commands.highlighted is None:
            return ""
        return str(commands.get_option_at_index(commands.highlighted).prompt)

    await wait_until(pilot, lambda: title.lower() in highlighted().lower(), f"'{title}' found")
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, CommandPalette), "its command")
