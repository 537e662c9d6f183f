"""Chats are saved as they happen and come back after a restart with every version; the chat
list reopens, renames, deletes and exports them."""

from __future__ import annotations

import json

import pytest
from gates import at_token, holding
from tui_support import SIZE, make_app, send, wait_idle, wait_loaded, wait_until

from ezchat.storage.store import ChatStore
from ezchat.tui.reply_saver import ReplySaver

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


async def test_saved_chat_survives_a_restart_with_every_version(tmp_path):
    store_path = tmp_path / "chats.db"
    app = make_app(store_path, sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=10)
        app.chat_screen.thread.sampler.seed = 5
        await send(pilot, "Say something nice.")
        # saved as it happens: another connection sees the finished reply already
        with ChatStore(store_path) as other:
            (summary,) = other.chats()
            stored = other.messages(summary.id)
            assert [m.content for m in stored] == [
                m["content"] for m in app.chat_screen.thread.messages
            ]
            assert summary.title == "Say something nice."
        await pilot.press("ctrl+r")
        await wait_idle(pilot)
        messages = [dict(m) for m in app.chat_screen.thread.messages]
        versions = app.chat_screen.chat.versions(-1)
        assert len(versions) == 2
        chat_id = app.chat_screen.chat.chat_id

    again = make_app(store_path, resume=True)
    async with again.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        assert again.chat_screen.chat.chat_id == chat_id
        assert [m["content"] for m in again.chat_screen.thread.messages] == [
            m["content"] for m in messages
        ]
        assert again.chat_screen.chat.versions(-1) == versions
        view = again.chat_screen.conversation.views[-1]
        assert view.version_label == "2/2" and view.content == versions[1]
        view.focus()
        await pilot.press("left")
        assert again.chat_screen.thread.messages[-1]["content"] == versions[0]
        # the input's history holds the chat's messages
        again.query_one("#input").focus()
        await pilot.press("up")
        assert again.query_one("#input").text == "Say something nice."
        # the choice of version is saved too
    with ChatStore(store_path) as store:
        assert store.messages(chat_id)[-1].current == 0


async def test_chat_list_opens_renames_and_deletes(tmp_path):
    store_path = tmp_path / "chats.db"
    app = make_app(store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        await send(pilot, "First chat here.")
        first_id = app.chat_screen.chat.chat_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert (
            app.chat_screen.thread.messages == []
            or app.chat_screen.thread.messages[0]["role"] == "system"
        )
        await send(pilot, "Second chat here.")
        second_id = app.chat_screen.chat.chat_id
        assert first_id != second_id

        await pilot.press("f5")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChatListScreen", "list")
        table = app.screen.query_one("DataTable")
        assert table.row_count == 2
        # newest first: the second chat is on top; open the first one
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.chat_screen.chat.chat_id == first_id
        assert app.chat_screen.thread.messages[0]["content"] == "First chat here."
        assert app.chat_screen.conversation.views[0].content == "First chat here."

        await pilot.press("f5")
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        area = app.screen.query_one("TextArea")
        area.load_text("Renamed chat")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.store.chat(app.screen._selected()).title == "Renamed chat"

        await pilot.press("x")
        await pilot.pause()
        exported = sorted((tmp_path / "ezchat-home").rglob("chat-*.json"))
        assert exported
        data = json.loads(exported[0].read_text())
        assert data["title"] == "Renamed chat"

        doomed = app.screen._selected()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        remaining = [c.id for c in app.store.chats()]
        assert len(remaining) == 1 and doomed not in remaining
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ != "ChatListScreen"
        # the open chat was deleted: the app goes on in a new, unsaved one
        if doomed == first_id:
            assert app.chat_screen.chat.chat_id is None
        else:
            assert app.chat_screen.chat.chat_id == first_id


async def test_resume_without_saved_chats_starts_a_new_one(tmp_path):
    app = make_app(tmp_path / "chats.db", resume=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=4)
        assert app.chat_screen.chat.chat_id is None
        assert any("No saved chat" in n.message for n in app._notifications)
        await send(pilot, "Hi")
        assert app.chat_screen.chat.chat_id is not None


async def test_unreadable_store_is_reported_and_the_chat_still_works(tmp_path):
    bad = tmp_path / "chats.db"
    bad.write_bytes(b"this is not a database" * 100)
    app = make_app(bad)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=4)
        assert app.store is None
        assert any("will not be saved" in n.message for n in app._notifications)
        await send(pilot, "Hello")
        assert app.chat_screen.thread.messages[-1]["role"] == "bot"


async def test_mid_reply_everything_finished_is_already_on_disk(tmp_path, monkeypatch):
    """What a kill mid-reply would leave: every finished message, the new one typed included,
    and the reply as far as it was flushed, are committed before the reply ends (read through
    another connection, as after a restart). The reply is flushed at every token here, so that
    a flush has come by the time the reply is held."""
    monkeypatch.setattr(ReplySaver, "FLUSH_SECONDS", 0.0)
    store_path = tmp_path / "chats.db"
    app = make_app(store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=200)
        app.chat_screen.thread.sampler.max_len_tokens = 12
        await send(pilot, "Hello!")
        app.chat_screen.thread.sampler.max_len_tokens = 200

        def stored_reply() -> str:
            with ChatStore(store_path) as other:  # another connection, as after a restart
                (summary,) = other.chats()
                stored = other.messages(summary.id)
            return stored[3].content if len(stored) == 4 else ""

        with holding("token", at_token(12)) as gate:
            await send(pilot, "Tell me a long story about a lighthouse.", wait=False)
            await wait_until(pilot, gate.held.is_set, "the reply held mid-stream")
            await wait_until(pilot, lambda: stored_reply().strip(), "the reply flushed")
            assert app.chat_screen.generating
            with ChatStore(store_path) as other:
                (summary,) = other.chats()
                stored = [(m.role, m.content) for m in other.messages(summary.id)]
            assert stored[:3] == [
                ("user", "Hello!"),
                ("bot", app.chat_screen.thread.messages[1]["content"]),
                ("user", "Tell me a long story about a lighthouse."),
            ]
            role, partial = stored[3]
            assert role == "bot" and partial.strip()
            await pilot.press("escape")
        await wait_idle(pilot)
        assert app.chat_screen.thread.messages[-1]["content"].startswith(partial)
        with ChatStore(store_path) as other:
            assert (
                other.messages(summary.id)[-1].content
                == app.chat_screen.thread.messages[-1]["content"]
            )
