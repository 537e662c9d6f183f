"""A big stored chat stays usable while its first screen fills: a key typed during the fill is
echoed in the prompt before the fill ends, Home reaches the first message in one press (only
the first screen mounted), scrolling down from there mounts later ones, and End shows the
newest again. (benchmarks/open_chat.py measures the echo times; no clock is read here.)"""

from __future__ import annotations

import pytest
from gates import holding
from test_tui_bigchat import many_messages, store_with
from textual import events
from textual.widgets import TextArea
from tui_support import SIZE, send, wait_counted, wait_loaded, wait_until

from ezchat.session import ChatOptions
from ezchat.tui import EzChatApp

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow

MESSAGES = 2_000


class EchoRecordingApp(EzChatApp):
    """The real app, noting at each change of the prompt's text whether the conversation was
    still filling the screen then."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.echoes: list[tuple[str, bool]] = []

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        filling = self.chat_screen.conversation.filling
        self.echoes.append((event.text_area.text, filling))


def recording_app(store_path, chat_id: int) -> EchoRecordingApp:
    options = ChatOptions(sampler="GreedyDecoding", context_length=2048, seed=1234)
    return EchoRecordingApp(options, store_path=store_path, chat_id=chat_id)


def app_on_a_big_chat(tmp_path) -> EchoRecordingApp:
    """The app opening a stored chat of MESSAGES short messages."""
    store_path = tmp_path / "chats.db"
    return recording_app(store_path, store_with(store_path, many_messages(MESSAGES)))


async def test_a_key_typed_while_2000_messages_fill_the_screen_is_echoed_at_once(tmp_path):
    app = app_on_a_big_chat(tmp_path)
    with holding("fill", lambda count, text: count >= 3) as fill:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, fill.held.is_set, "the fill to be held")
            await wait_until(pilot, lambda: app.ready, "the chat to open")
            conversation = app.chat_screen.conversation
            prompt = app.query_one("#input")
            assert conversation.filling and prompt.has_focus
            # as the terminal driver posts a key: a message to the app, not Pilot's press
            # (which waits for the app to be idle)
            app.post_message(events.Key("x", "x"))
            await wait_until(pilot, lambda: bool(app.echoes), "the key's echo")
            assert app.echoes == [("x", True)]  # in the prompt while the screen still filled
            fill.release()
            await wait_counted(pilot)
            assert prompt.text == "x" and not conversation.filling
            assert conversation.views[-1].index == MESSAGES - 1


async def test_a_resize_while_the_screen_fills_leaves_the_filling_to_the_fill(tmp_path):
    """A resize with the column shorter than the screen (the terminal's first size, or the
    user's) would mount a batch of 20 earlier messages as Markdown at once, during which keys
    wait; while the fill is at it, it is left to the fill, which mounts one message a frame as
    plain text."""
    app = app_on_a_big_chat(tmp_path)
    with holding("fill", lambda count, text: count >= 3) as fill:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, fill.held.is_set, "the fill to be held")
            await wait_until(pilot, lambda: app.ready, "the chat to open")
            conversation = app.chat_screen.conversation
            assert conversation.filling
            mounted = len(conversation.views)
            await pilot.resize_terminal(SIZE[0], SIZE[1] + 20)
            await pilot.pause()
            views = conversation.views
            assert len(views) == mounted  # the resize mounted nothing: that is the fill's job
            assert all(view.draft for view in views[:-1])  # plain text while the screen fills
            fill.release()
            await wait_counted(pilot)
            assert not conversation.filling
            assert conversation.virtual_size.height > conversation.size.height  # scrollable


async def test_home_reaches_the_first_of_2000_messages_and_end_the_newest(tmp_path):
    messages = many_messages(MESSAGES)
    store_path = tmp_path / "chats.db"
    chat = store_with(store_path, messages)
    app = recording_app(store_path, chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.ready, "the chat to open")
        await wait_counted(pilot)
        conversation = app.chat_screen.conversation
        mounted_at_open = len(conversation.views)
        assert conversation.unmounted_before > 0
        conversation.views[-1].focus()  # a message focused (Tab or click): the column's keys
        await pilot.press("home")
        await wait_until(
            pilot,
            lambda: conversation.views[0].index == 0 and not conversation.filling,
            "Home to show the first message",
        )
        await pilot.pause()
        views = conversation.views
        first = views[0]
        assert (first.role, first.content) == messages[0]
        assert [(v.role, v.content) for v in views] == messages[: len(views)]
        assert conversation.scroll_y == 0 and first.has_focus
        # on screen, at the top (below its margin)
        assert conversation.content_region.contains_region(first.region)
        assert first.region.y == conversation.content_region.y + first.styles.margin.top
        # one screenful, as on open: not the 2,000
        assert len(views) <= 2 * mounted_at_open and conversation.unmounted_after > 0

        # scrolling down from there mounts the messages that follow, in order
        after_home = conversation.unmounted_after
        while conversation.unmounted_after >= after_home:
            conversation.scroll_end(animate=False, immediate=True)
            await pilot.pause(0.05)  # in a loop: until the scroll has mounted later messages
        views = conversation.views
        assert [(v.role, v.content) for v in views] == messages[: len(views)]

        await pilot.press("end")
        await wait_until(
            pilot,
            lambda: conversation.views[-1].index == MESSAGES - 1 and not conversation.filling,
            "End to show the newest message",
        )
        await pilot.pause()
        assert conversation.views[-1].content == messages[-1][1]
        assert conversation.views[-1].has_focus and conversation.unmounted_after == 0
        assert conversation.scroll_y == conversation.max_scroll_y


async def test_sending_after_home_shows_the_newest_messages_again(tmp_path):
    messages = many_messages(120)
    store_path = tmp_path / "chats.db"
    chat = store_with(store_path, messages)
    app = recording_app(store_path, chat)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        conversation = app.chat_screen.conversation
        conversation.views[-1].focus()
        await pilot.press("home")
        await wait_until(
            pilot,
            lambda: conversation.views[0].index == 0 and not conversation.filling,
            "Home to show the first message",
        )
        assert conversation.unmounted_after > 0
        app.query_one("#input").focus()
        await send(pilot, "Say hi.")
        thread_messages = app.chat_screen.thread.messages
        assert len(thread_messages) == 122
        views = conversation.views
        assert conversation.unmounted_after == 0
        assert [v.index for v in views] == list(range(views[0].index, 122))
        assert (
            views[-2].content == "Say hi." and views[-1].content == thread_messages[-1]["content"]
        )
