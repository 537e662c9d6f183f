"""Big stored chats open with only what is on screen drawn: a reply holding a 10,000-row
Markdown table is shown as plain text row by row, a chat of 2,000 messages mounts only its
newest messages, and earlier ones come as the user scrolls up. A reply that streams past the
Markdown limit goes on as plain text. (benchmarks/open_chat.py measures the times.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static
from tui_support import SIZE, make_app, send, wait_loaded, wait_until

from ezchat.errors import UserFileError
from ezchat.safetext import visible
from ezchat.settings.config import MAX_MARKDOWN_CHARS, config_path, load_config
from ezchat.storage.store import ChatStore
from ezchat.tui.conversation import BATCH_MESSAGES
from ezchat.tui.plainbody import PlainBody

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow

ROWS = 10_000
MESSAGES = 2_000


def table_reply(rows: int) -> str:
    lines = ["Here is the table:", "", "| # | name | value |", "|---|---|---|"]
    lines += [f"| {i} | item {i} | {i * 37 % 1000} |" for i in range(1, rows + 1)]
    return "\n".join(lines) + "\n\nThat is all."


def store_with(path: Path, messages: list[tuple[str, str]]) -> int:
    with ChatStore(path) as store:
        chat = store.create_chat("Big", model="SmolLM2", format="auto")
        for role, text in messages:
            store.add_message(chat, role, text)
    return chat


def many_messages(count: int) -> list[tuple[str, str]]:
    return [
        ("user", f"Question {i}: what is {i} squared?")
        if i % 2 == 0
        else ("bot", f"It is **{(i - 1) ** 2}**, message {i}.")
        for i in range(count)
    ]


async def test_a_10000_row_table_opens_drawing_only_the_screen(tmp_path):
    store_path = tmp_path / "chats.db"
    reply = table_reply(ROWS)
    chat = store_with(store_path, [("user", "A big table, please."), ("bot", reply)])
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        conversation = app.chat_screen.conversation
        last = conversation.views[-1]
        assert last.index == 1 and last.content == reply
        body = last.body
        assert isinstance(body, PlainBody) and body.text == visible(reply)
        assert body.row_count > ROWS
        # structural: the rows drawn are those on screen (the first frame may come before the
        # column is scrolled to its end), the widgets a handful
        assert 0 < len(body.rows_drawn) <= 2 * SIZE[1]
        body.rows_drawn.clear()
        body.refresh()
        await pilot.pause()
        assert 0 < len(body.rows_drawn) <= SIZE[1]
        assert max(body.rows_drawn) == body.row_count - 1  # the end is what is shown
        assert body.row(body.row_count - 1) == "That is all."
        assert len(conversation.query("*")) < 20

        body.rows_drawn.clear()
        conversation.scroll_home(animate=False)
        await pilot.pause()
        assert 0 < len(body.rows_drawn) <= SIZE[1]
        top = [body.row(y) for y in sorted(body.rows_drawn)]
        assert top[0] == "Here is the table:"
        assert "| 1 | item 1 | 37 |" in top

        # the prompt echoes what is typed
        await pilot.press("h", "i")
        assert app.query_one("#input").text == "hi"


async def test_2000_messages_mount_only_the_newest_and_earlier_ones_on_scroll(tmp_path):
    store_path = tmp_path / "chats.db"
    messages = many_messages(MESSAGES)
    chat = store_with(store_path, messages)
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        conversation = app.chat_screen.conversation
        views = conversation.views
        assert 0 < len(views) <= BATCH_MESSAGES
        assert views[-1].index == MESSAGES - 1 and views[-1].content == messages[-1][1]
        assert conversation.unmounted_before == MESSAGES - len(views)
        assert [v.index for v in views] == list(range(conversation.unmounted_before, MESSAGES))

        first_shown = views[0]
        conversation.scroll_home(animate=False)
        await wait_until(
            pilot, lambda: len(conversation.views) > len(views), "earlier messages to mount"
        )
        await pilot.pause()
        grown = conversation.views
        assert len(grown) <= 2 * BATCH_MESSAGES
        assert [v.index for v in grown] == list(range(conversation.unmounted_before, MESSAGES))
        # the message that was first stays where the user was looking, not pushed off
        assert conversation.scroll_y > 0
        top, bottom = conversation.region.y, conversation.region.bottom
        assert top - first_shown.size.height < first_shown.region.y < bottom

        await pilot.press("o", "k")
        assert app.query_one("#input").text == "ok"


async def test_scrolling_up_reaches_the_first_message(tmp_path):
    store_path = tmp_path / "chats.db"
    messages = many_messages(3 * BATCH_MESSAGES)
    chat = store_with(store_path, messages)
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        conversation = app.chat_screen.conversation
        assert conversation.unmounted_before > 0
        while conversation.unmounted_before > 0:  # each scroll to the top mounts a batch
            conversation.scroll_home(animate=False)
            await pilot.pause(0.1)  # in a loop: until every earlier message is mounted
        conversation.scroll_home(animate=False)
        await pilot.pause()
        first = conversation.views[0]
        assert first.index == 0 and first.content == messages[0][1]
        assert first.region.y >= conversation.region.y  # on screen at the top


async def test_a_reply_streaming_past_the_limit_goes_on_as_plain_text(tmp_path):
    app = make_app(tmp_path / "chats.db", max_markdown_chars=45)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=64)
        await send(pilot, "Count from 1 to 30, separated by commas.")
        reply = app.chat_screen.thread.messages[-1]["content"]
        assert len(reply) > 45, "the reply must outgrow the limit for this test"
        view = app.chat_screen.conversation.views[-1]
        assert view.content == reply
        assert isinstance(view.body, PlainBody) and view.body.text == visible(reply)
        assert "plain text" in str(view.query_one(".role", Static).content)
        # the user's message is short: still Markdown
        assert not app.chat_screen.conversation.views[-2].is_plain


async def test_the_limit_comes_from_the_config_file_and_the_argument(tmp_path):
    assert make_app(None).max_markdown_chars == MAX_MARKDOWN_CHARS
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("max_markdown_chars = 500\n", encoding="utf-8")
    assert make_app(None).max_markdown_chars == 500
    assert make_app(None, max_markdown_chars=0).max_markdown_chars == 0
    path.write_text("max_markdown_chars = -3\n", encoding="utf-8")
    with pytest.raises(UserFileError, match="max_markdown_chars must be 0 or more"):
        load_config()
