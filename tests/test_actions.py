"""One table of actions (ezchat/tui/actions.py): the README's key tables, the widgets' bindings
and the command palette all come from it, and the input box's keys can be remapped too."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import TextArea
from tui_support import SIZE, make_app, palette_command, wait_idle, wait_loaded, wait_until

import ezchat as ez
from ezchat.chat.reply import reroll_sampler
from ezchat.chat.reply_kind import ReplyKind
from ezchat.settings.config import Config, save_config
from ezchat.tui import actions
from ezchat.tui.settings import binding_ids

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_key_tables_are_the_actions_table():
    text = README.read_text(encoding="utf-8")
    assert actions.readme_tables() in text, (
        "README's key tables differ from ezchat/tui/actions.py; paste the output of "
        "'python -m ezchat.tui.actions' between the key-table markers"
    )


def test_every_chat_binding_id_is_in_the_table():
    table = {action.id for action in actions.ACTIONS}
    # the dialogs', the sampler form's, the chat list's and the loading screen's keys are
    # their own screens' and stay next to them
    own = ("dialog.", "sampler.", "chats.", "loading.")
    chat_ids = {i for i in binding_ids() if not i.startswith(own)}
    assert chat_ids == {a.id for a in actions.ACTIONS if a.keys}
    assert chat_ids <= table
    assert len(table) == len(actions.ACTIONS), "an id is in the table twice"


@pytest.mark.slow
async def test_the_palette_lists_every_titled_action_and_runs_it(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await palette_command(pilot, "Switch prompt format")
        await wait_until(
            pilot, lambda: type(app.screen).__name__ == "PickerScreen", "the format picker"
        )
    titles = [entry.title for entry in actions.palette_entries()]
    assert "Switch thinking" in titles and "Export this chat" in titles


@pytest.mark.slow
async def test_the_input_boxs_keys_are_remapped_from_the_config(tmp_path):
    save_config(Config(keymap={"input.send": "ctrl+o", "input.newline": "enter"}))
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        box = app.query_one("#input", TextArea)
        assert "ctrl+o send" in str(box.border_title)
        await pilot.press(*"Hi", "enter", *"there")
        await pilot.pause()
        assert box.text == "Hi\nthere"  # Enter is a new line now
        await pilot.press("ctrl+o")
        messages = app.chat_screen.thread.messages
        await wait_until(pilot, lambda: any(m["role"] == "bot" for m in messages), "a reply")
        await wait_idle(pilot)
        assert [m["content"] for m in messages if m["role"] == "user"] == ["Hi\nthere"]


def test_a_reroll_takes_the_next_seed_in_the_thread_and_the_app_alike(model):
    """Thread.start(REROLL) numbers its rerolls: the first writes what a fresh chat with seed
    + 1 writes, so a fixed seed never gives the same reply twice, and stays reproducible."""
    sampler = ez.SamplerSettings(temp=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=42)
    sampler.max_len_tokens = 12
    thread = ez.Thread(model, "chatml", sampler)
    thread.add_message("user", "Say something.")
    first = thread.start(ReplyKind.REPLY).run()
    rerolled = thread.start(ReplyKind.REROLL).run()
    again = ez.Thread(model, "chatml", reroll_sampler(sampler, 1))
    again.add_message("user", "Say something.")
    assert rerolled == again.start().run()
    fresh = ez.Thread(model, "chatml", sampler)
    fresh.add_message("user", "Say something.")
    assert fresh.start().run() == first  # the first reply keeps the chat's own seed
    assert reroll_sampler(sampler, 2).seed == 44
    greedy = ez.samplers.load("GreedyDecoding")
    assert reroll_sampler(greedy, 3) is greedy  # greedy needs no seed
