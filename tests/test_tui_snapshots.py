"""Snapshots of the main screen, the sampler form and the chat list, with a conversation
loaded from a fixture (no generation, no timings), so they are the same on every run.

Update them after a deliberate change with ``pytest tests/test_tui_snapshots.py
--snapshot-update`` and look at the report before committing."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from tui_support import wait_loaded, wait_until

from ezchat.chat.tree import Made, Origin
from ezchat.session import ChatOptions
from ezchat.storage.store import ChatStore
from ezchat.tui import EzChatApp

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow

SIZE = (120, 40)
FIXED_TIME = 1_767_225_600.0  # 2026-01-01 00:00 UTC


@pytest.fixture
def fixture_chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, int]:
    """A store with two chats; the first has a reply with two versions and a code block."""
    monkeypatch.setenv("TZ", "UTC")  # the chat list shows local times
    if hasattr(time, "tzset"):
        time.tzset()
    path = tmp_path / "chats.db"
    with ChatStore(path) as store:
        older = store.create_chat(
            "Planning a trip",
            model="SmolLM2-135M-Instruct.Q4_1.gguf",
            format="auto",
            sampler="DefaultSampling",
            created=FIXED_TIME,
        )
        store.add_message(older, "user", "Where should I go in spring?")
        store.add_message(older, "bot", "Kyoto, for the cherry blossoms.")
        chat = store.create_chat(
            "Capitals and code",
            model="SmolLM2-135M-Instruct.Q4_1.gguf",
            format="auto",
            sampler="GreedyDecoding",
            created=FIXED_TIME,
        )
        store.add_message(chat, "system", "You are a helpful assistant.")
        question = store.add_message(chat, "user", "What is the capital of France?")
        store.add_message(chat, "bot", "Paris is the capital of France.")
        # a reroll: a sibling of the first reply, the one the conversation goes on from
        reroll = Origin(Made.REROLL)
        text = "The capital of France is **Paris**, on the Seine."
        store.add_node(chat, question, "bot", text, origin=reroll)
        store.add_message(chat, "user", "Show me hello world in Python.")
        store.add_message(
            chat,
            "bot",
            'Here it is:\n\n```python\nprint("Hello, world!")\n```\n\nRun it with `python hello.py`.',
        )
    # fixed times, so the chat list reads the same on every run
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE chats SET created = ?, updated = ? + id", (FIXED_TIME, FIXED_TIME))
    return path, chat


def fixture_app(fixture_chat: tuple[Path, int]) -> EzChatApp:
    path, chat = fixture_chat
    options = ChatOptions(context_length=2048, seed=1234)
    return EzChatApp(options, chat_id=chat, store_path=path, show_timings=False)


async def settle(pilot) -> None:
    app = await wait_loaded(pilot)
    prompt = app.query_one("#input")
    prompt.cursor_blink = False
    await pilot.pause()
    await app.workers.wait_for_complete()
    # A blink tick queued before the blinking stopped can still hide the cursor (on a busy
    # machine); focusing the input afresh shows it for good.
    app.set_focus(None)
    await pilot.pause()
    prompt.focus()
    await pilot.pause()


async def settle_behind_a_dialog(pilot) -> None:
    """Settle, then take the focus off the input: a dialog blurs it when it opens, and whether
    the screen behind is drawn before or after that blur (cursor shown or not) is a race."""
    await settle(pilot)
    pilot.app.set_focus(None)
    await pilot.pause()


def test_main_screen(snap_compare, fixture_chat):
    assert snap_compare(fixture_app(fixture_chat), terminal_size=SIZE, run_before=settle)


def test_sampler_form(snap_compare, fixture_chat):
    async def open_form(pilot) -> None:
        await settle_behind_a_dialog(pilot)
        await pilot.press("f2")
        await wait_until(
            pilot, lambda: type(pilot.app.screen).__name__ == "SamplerFormScreen", "form"
        )
        for field in pilot.app.screen.query("Input"):
            field.cursor_blink = False  # a steady cursor, whenever the snapshot is taken
        await pilot.pause()

    assert snap_compare(fixture_app(fixture_chat), terminal_size=SIZE, run_before=open_form)


def test_chat_list(snap_compare, fixture_chat):
    async def open_list(pilot) -> None:
        await settle_behind_a_dialog(pilot)
        await pilot.press("f5")
        await wait_until(
            pilot,
            lambda: (
                type(pilot.app.screen).__name__ == "ChatListScreen"
                and pilot.app.screen.query_one("DataTable").row_count == 2
            ),
            "the chat list",
        )
        await pilot.pause()

    assert snap_compare(fixture_app(fixture_chat), terminal_size=SIZE, run_before=open_list)
