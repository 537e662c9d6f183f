"""Big stored chats open at once: the newest message (and its end) is drawn first, the screen
above it fills a message a frame, earlier ones come on scrolling up, a Markdown table over
MAX_MARKDOWN_TABLE_ROWS is plain text, and the context pane counts in a worker, saying
"counting…" until its figures (the same as counted directly) arrive.
(benchmarks/open_chat.py measures the times.)"""

from __future__ import annotations

import pytest
from test_tui_bigchat import many_messages, store_with, table_reply
from tui_support import SIZE, make_app, wait_counted, wait_until

from ezchat.safetext import visible
from ezchat.settings.config import MAX_MARKDOWN_CHARS
from ezchat.tui.markdown_limits import MAX_MARKDOWN_TABLE_ROWS, table_rows
from ezchat.tui.plainbody import PlainBody

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def test_table_rows_counts_the_rows_after_the_delimiter():
    assert table_rows("no table | here") == 0
    assert table_rows(table_reply(7)) == 7  # the body rows, not the header
    assert table_rows("a | b\n:--|--:\n1 | 2\n3 | 4") == 2


async def test_a_table_at_the_character_limit_opens_as_plain_text(tmp_path):
    reply = table_reply(2000)
    reply = reply[: reply.rindex("\n", 0, MAX_MARKDOWN_CHARS - 20)] + "\n\nThat is all."
    assert len(reply) <= MAX_MARKDOWN_CHARS and table_rows(reply) > MAX_MARKDOWN_TABLE_ROWS
    store_path = tmp_path / "chats.db"
    chat = store_with(store_path, [("user", "A table, please."), ("bot", reply)])
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready, "the chat to open")
        await wait_counted(pilot)
        last = app.chat_screen.conversation.views[-1]
        assert last.is_plain and last.body.text == visible(reply)
        role_line = str(last.query_one(".role").render())
        assert (
            f"a table of {table_rows(reply):,} rows > {MAX_MARKDOWN_TABLE_ROWS} rows" in role_line
        )
        body = last.body
        assert isinstance(body, PlainBody) and max(body.rows_drawn) == body.row_count - 1


async def test_a_table_at_the_row_limit_stays_markdown(tmp_path):
    small = table_reply(MAX_MARKDOWN_TABLE_ROWS)
    assert table_rows(small) == MAX_MARKDOWN_TABLE_ROWS
    store_path = tmp_path / "chats.db"
    chat = store_with(store_path, [("user", "A table, please."), ("bot", small)])
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready, "the chat to open")
        await wait_counted(pilot)
        assert not app.chat_screen.conversation.views[-1].is_plain


async def test_2000_messages_show_the_newest_first_and_count_as_before(tmp_path):
    messages = many_messages(2000)
    store_path = tmp_path / "chats.db"
    chat = store_with(store_path, messages)
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready, "the chat to open")
        conversation = app.chat_screen.conversation
        pane = app.query_one("#context")
        # at once: the newest message (the fill may have added one or two), and the pane still
        # counting (2,000 messages take it 0.3 s or more, started after the first paint)
        first = conversation.views
        assert first[-1].index == 1999 and first[-1].content == messages[-1][1]
        assert pane.counting and "counting…" in str(pane.render())
        await wait_counted(pilot)
        assert len(conversation.views) > len(first)
        assert conversation.scroll_y == conversation.max_scroll_y  # the end is on screen
        assert conversation.virtual_size.height > conversation.size.height  # the screen full
        indexes = [v.index for v in conversation.views]
        assert indexes == list(range(conversation.unmounted_before, 2000))
        # the figures equal a direct count (what the pane showed before it counted in a worker)
        stats = app.chat_screen.thread.context_stats()
        assert pane.stats == stats and pane.used == stats.in_context
        assert f"{stats.in_context} / 2048 tokens" in str(pane.render())
        assert f"History 2000 messages · {stats.history_tokens} tokens" in str(pane.render())
        await pilot.press("o", "k")
        assert app.query_one("#input").text == "ok"


async def test_every_message_is_reachable_by_scrolling_up_with_its_text(tmp_path):
    messages = many_messages(120)
    store_path = tmp_path / "chats.db"
    chat = store_with(store_path, messages)
    app = make_app(store_path, chat_id=chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready, "the chat to open")
        await wait_counted(pilot)
        conversation = app.chat_screen.conversation
        while conversation.unmounted_before > 0:  # each press mounts a batch
            await pilot.press("home")  # the column's own Home key, as the user presses it
            conversation.scroll_home(animate=False)
            await pilot.pause(0.1)  # in a loop: until every earlier message is mounted
        views = conversation.views
        assert [v.index for v in views] == list(range(120))
        assert [(v.role, v.content) for v in views] == messages
