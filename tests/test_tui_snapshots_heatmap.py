"""A snapshot of the heatmap (F10) over a conversation built here, with fixed probabilities on
the reply's tokens, on the real app and the default model's vocabulary: no generation, so it is
the same on every run. Update it after a deliberate change with ``pytest
tests/test_tui_snapshots_heatmap.py --snapshot-update`` and look at the report first."""

from __future__ import annotations

import pytest
from tui_support import wait_loaded

from ezchat.chat.tree import Made, Origin, TokenInfo
from ezchat.session import ChatOptions
from ezchat.tui import EzChatApp

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow

SIZE = (120, 30)
REPLY = "The capital of France is Paris, a city on the Seine known for its museums."


def test_heatmap(snap_compare):
    async def show_heat(pilot) -> None:
        await wait_loaded(pilot)
        await pilot.app.workers.wait_for_complete()
        screen = pilot.app.chat_screen
        thread = screen.thread
        thread.add_message("user", "What is the capital of France?")
        tokens = thread.content_tokens(REPLY)
        node = thread.tree.append(thread.create_message("bot", REPLY), Origin(Made.REPLY))
        node.tokens = tokens
        # a spread of probabilities from very low to certain, one per token
        node.token_info = [
            TokenInfo(token, (0.05 + 0.95 * ((i * 7) % len(tokens)) / len(tokens)), ())
            for i, token in enumerate(tokens)
        ]
        await screen._show_conversation()
        await pilot.press("f10")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    app = EzChatApp(ChatOptions(context_length=2048, seed=1234), show_timings=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=show_heat)
