"""Nothing the chat held goes missing: a reply cut short by Ctrl+Q is saved, a chats file that
stops taking writes is said once while the chat goes on and can be exported, and a chat open in
another app is continued in a copy instead of being written by both."""

from __future__ import annotations

import json

import pytest
from gates import holding
from textual import events
from tui_support import SIZE, make_app, send, wait_loaded, wait_until

from ezchat.settings import paths
from ezchat.storage.chatlocks import ChatLocks
from ezchat.storage.store import ChatStore

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def _some_reply_text(app) -> bool:
    views = app.chat_screen.conversation.views
    return bool(views) and views[-1].role == "bot" and len(views[-1].content) > 10


async def test_ctrl_q_mid_reply_keeps_the_partial_reply(tmp_path):
    store_path = tmp_path / "chats.db"
    app = make_app(store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=400)
        with holding("token", lambda count, text: len(text) > 10) as gate:
            await send(pilot, "Tell me a long story about a lighthouse.", wait=False)
            await wait_until(pilot, gate.held.is_set, "the reply held mid-stream")
            await wait_until(pilot, lambda: _some_reply_text(app), "some reply text")
            assert app.chat_screen.generating
            # posted, not pressed: quitting waits for the reply, which the hold keeps going
            app.post_message(events.Key("ctrl+q", None))
    # the app is gone: what it had of the reply is in the Thread, and the same is on disk
    shown = app.chat_screen.thread.messages[-1]
    assert shown["role"] == "bot" and len(shown["content"]) > 10
    with ChatStore(store_path) as store:
        (summary,) = store.chats()
        stored = store.messages(summary.id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Tell me a long story about a lighthouse."),
        ("bot", shown["content"]),
    ]
    # with the token ids it was generated as, so reopening matches the saved cache
    assert stored[-1].tokens == app.chat_screen.thread.reply_tokens(shown)


async def test_ctrl_q_mid_reroll_keeps_the_partial_version(tmp_path):
    store_path = tmp_path / "chats.db"
    app = make_app(store_path, sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=8)
        app.chat_screen.thread.sampler.seed = 3
        await send(pilot, "Tell me a long story about a lighthouse.")
        first = app.chat_screen.thread.messages[-1]["content"]
        app.chat_screen.thread.sampler.max_len_tokens = 400
        with holding("token", lambda count, text: len(text) > 10) as gate:
            await pilot.press("ctrl+r")
            await wait_until(pilot, gate.held.is_set, "the reroll held mid-stream")
            await wait_until(
                pilot,
                lambda: (
                    app.chat_screen._stream_view is not None
                    and len(app.chat_screen._stream_view.content) > 10
                ),
                "some rerolled text",
            )
            app.post_message(events.Key("ctrl+q", None))
    with ChatStore(store_path) as store:
        (summary,) = store.chats()
        bot = store.messages(summary.id)[-1]
    assert bot.versions[0] == first
    assert len(bot.versions) == 2 and bot.current == 1
    assert bot.content == app.chat_screen.thread.messages[-1]["content"] and len(bot.content) > 10


def damage_nodes_table(store_path) -> None:
    """Garbage over the first page of the nodes table, the header and the schema intact:
    SQLite then says "database disk image is malformed" when a message is written."""
    with ChatStore(store_path) as store:
        for number in range(3):
            chat_id = store.create_chat(f"old chat {number}")
            for turn in range(30):
                store.add_message(chat_id, "user", f"old message {turn} " * 20)
    import sqlite3

    conn = sqlite3.connect(store_path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'nodes'").fetchone()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(store_path, "r+b") as file:
        file.seek((root[0] - 1) * page_size)
        file.write(b"\xa5garbage!" * (page_size // 9))


async def test_a_damaged_page_is_said_once_and_the_chat_goes_on(tmp_path):
    store_path = tmp_path / "chats.db"
    damage_nodes_table(store_path)
    app = make_app(store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        assert app.store is not None  # the header is fine: the file opens
        await send(pilot, "Hello!")
        await send(pilot, "Say more.")
        await send(pilot, "And more.")
        # every message and reply is in the chat and on screen
        roles = [m["role"] for m in app.chat_screen.thread.messages]
        assert roles == ["user", "bot"] * 3
        assert [v.content for v in app.chat_screen.conversation.views] == [
            m["content"] for m in app.chat_screen.thread.messages
        ]
        assert all(m["content"] for m in app.chat_screen.thread.messages)
        # said once, naming the file and what to do
        said = [n.message for n in app._notifications if "no longer being saved" in n.message]
        assert len(said) == 1, [n.message for n in app._notifications]
        assert str(store_path) in said[0] and "malformed" in said[0]
        assert "Export this chat" in said[0]
        # and the export writes the chat held in memory
        app.chat_screen.action_export_chat()
        exports = paths.data_dir() / "exports"
        (written,) = exports.glob("*.json")
        data = json.loads(written.read_text(encoding="utf-8"))
        assert [m["content"] for m in data["nodes"]] == [
            m["content"] for m in app.chat_screen.thread.messages
        ]
        (markdown,) = exports.glob("*.md")
        assert "And more." in markdown.read_text(encoding="utf-8")


async def test_a_chat_open_in_another_app_goes_on_in_a_copy(tmp_path):
    store_path = tmp_path / "chats.db"
    first = make_app(store_path)
    async with first.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        await send(pilot, "Hello!")
        chat_id = first.chat_screen.chat.chat_id
        before = [(m.role, m.content) for m in first.store.messages(chat_id)]

        # a second app resumes the same chat while the first still has it open
        second = make_app(store_path, resume=True)
        async with second.run_test(size=SIZE) as other:
            await wait_loaded(other, max_len_tokens=6)
            assert [m["content"] for m in second.chat_screen.thread.messages] == [
                c for _, c in before
            ]
            assert any("open in another ezchat" in n.message for n in second._notifications)
            await send(other, "Second app here.")
            copy_id = second.chat_screen.chat.chat_id
        assert copy_id is not None and copy_id != chat_id

        await send(pilot, "First app again.")
    with ChatStore(store_path) as store:
        original = [(m.role, m.content) for m in store.messages(chat_id)]
        copy = [(m.role, m.content) for m in store.messages(copy_id)]
        titles = {summary.id: summary.title for summary in store.chats()}
    assert original[:2] == before and original[2] == ("user", "First app again.")
    assert all(content != "Second app here." for _, content in original)
    assert copy[:2] == before and copy[2] == ("user", "Second app here.")
    assert titles[copy_id] == f"{titles[chat_id]} (copy)"


async def test_the_copy_of_a_held_chat_keeps_each_replys_reasoning(tmp_path):
    """The copy is written from the app's own history, reasoning and all."""
    store_path = tmp_path / "chats.db"
    with ChatStore(store_path) as store:
        chat_id = store.create_chat("Thought", format="chatml")
        store.add_message(chat_id, "user", "Name a colour.")
        store.add_message(chat_id, "bot", "Blue.", reasoning="The sky is blue.")
    holder = ChatLocks(store_path)  # another app has the chat open
    assert holder.claim(chat_id)
    try:
        app = make_app(store_path, resume=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_loaded(pilot, max_len_tokens=6)
            await send(pilot, "And another?")
            copy_id = app.chat_screen.chat.chat_id
    finally:
        holder.release_all()
    assert copy_id is not None and copy_id != chat_id
    with ChatStore(store_path) as store:
        copied = store.messages(copy_id)
    assert (copied[1].content, copied[1].reasoning) == ("Blue.", "The sky is blue.")
