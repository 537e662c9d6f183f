"""Screens and settings: the sampler form checks values, presets and formats switch from
lists, message actions, the command palette, the keymap, the theme, and errors shown in the
app instead of tracebacks."""

from __future__ import annotations

import pytest
from gates import at_token, holding
from tui_support import (
    SIZE,
    make_app,
    palette_command,
    send,
    wait_idle,
    wait_loaded,
    wait_until,
)

from ezchat.session import ChatOptions
from ezchat.settings import paths
from ezchat.settings.config import Config, load_config, save_config
from ezchat.tui import EzChatApp

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def screen_name(app) -> str:
    return type(app.screen).__name__


async def test_sampler_form_names_a_bad_value_and_saves_good_ones(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("f2")
        await wait_until(pilot, lambda: screen_name(app) == "SamplerFormScreen", "the form")
        form = app.screen
        temp = form.query_one("#field-temp")
        error = form.query_one("#sampler-error")

        temp.value = "11"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen_name(app) == "SamplerFormScreen"
        assert "temp must be between 0 and 10, got 11.0" in str(error.render())
        assert temp.has_class("-invalid")

        temp.value = "warm"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "temp must be a number, got 'warm'" in str(error.render())

        temp.value = "0.5"
        form.query_one("#field-top_k").value = "5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen_name(app) != "SamplerFormScreen"
        assert (
            app.chat_screen.thread.sampler.temp == 0.5 and app.chat_screen.thread.sampler.top_k == 5
        )
        assert app.chat_screen.thread.sampler.name == "custom"
        assert "sampler custom" in app.sub_title


async def test_sampler_form_refuses_nan_and_values_that_would_wrap(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        before = app.chat_screen.thread.sampler
        await pilot.press("f2")
        await wait_until(pilot, lambda: screen_name(app) == "SamplerFormScreen", "the form")
        form = app.screen
        error = form.query_one("#sampler-error")
        for name, text, problem in [
            ("temp", "nan", "temp must be a finite number, got nan"),
            ("top_k", str(10**23), "top_k must be between 0 and 2147483647"),
        ]:
            field = form.query_one(f"#field-{name}")
            field.value = text
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert screen_name(app) == "SamplerFormScreen"
            assert problem in str(error.render())
            assert field.has_class("-invalid")
            field.value = str(getattr(before, name))
        await pilot.press("escape")
        await pilot.pause()
        assert app.chat_screen.thread.sampler is before


async def test_preset_and_format_pickers(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        await pilot.press("f3")
        await wait_until(pilot, lambda: screen_name(app) == "PickerScreen", "the preset list")
        picker = app.screen.query_one("OptionList")
        names = [name for name, _ in app.screen.choices]
        picker.highlighted = names.index("MinPSampling")
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat_screen.thread.sampler.name == "MinPSampling"
        assert "sampler MinPSampling" in app.sub_title

        await pilot.press("f4")
        await wait_until(pilot, lambda: screen_name(app) == "PickerScreen", "the format list")
        names = [name for name, _ in app.screen.choices]
        assert names[0] == "auto" and "chatml" in names
        app.screen.query_one("OptionList").highlighted = names.index("chatml")
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat_screen.thread.format.name == "chatml"
        assert "format chatml" in app.sub_title
        app.chat_screen.thread.sampler.max_len_tokens = 6
        await send(pilot, "Hi")
        assert app.chat_screen.thread.messages[-1]["role"] == "bot"
        assert app.store.chat_settings(app.chat_screen.chat.chat_id)["format"] == "chatml"


async def test_a_broken_preset_file_is_reported_and_the_app_goes_on(tmp_path):
    folder = paths.user_dir("samplers")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Broken.toml").write_text("temp = 'hot'\n")
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=4)
        await pilot.press("f3")
        await wait_until(pilot, lambda: screen_name(app) == "PickerScreen", "the preset list")
        choices = dict(app.screen.choices)
        assert choices["Broken"].startswith("(broken:")
        app.screen.query_one("OptionList").highlighted = list(choices).index("Broken")
        await pilot.press("enter")
        await pilot.pause()
        assert any("Broken.toml" in n.message for n in app._notifications)
        assert app.chat_screen.thread.sampler.name == "GreedyDecoding"
        await send(pilot, "Still here?")
        assert app.chat_screen.thread.messages[-1]["role"] == "bot"


async def test_message_actions_edit_delete_insert_copy(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        await send(pilot, "Hello")
        views = app.chat_screen.conversation.views
        views[0].focus()
        await pilot.press("e")
        await wait_until(pilot, lambda: screen_name(app) == "TextEditScreen", "the editor")
        app.screen.query_one("TextArea").load_text("Hello, edited")
        await pilot.press("ctrl+s")
        await pilot.pause()
        # an edit is a sibling: the conversation ends at it, the reply stays on the old branch
        chat_id = app.chat_screen.chat.chat_id
        assert [m["content"] for m in app.chat_screen.thread.messages] == ["Hello, edited"]
        assert [m.content for m in app.store.messages(chat_id)] == ["Hello, edited"]
        assert app.chat_screen.conversation.views[0].version_label == "2/2"

        app.chat_screen.conversation.views[0].focus()
        await pilot.press("y")
        assert app.clipboard == "Hello, edited"

        app.chat_screen.conversation.views[0].focus()
        await pilot.press("left")  # back to the first version, and the reply under it
        await pilot.pause()
        assert [m["role"] for m in app.chat_screen.thread.messages] == ["user", "bot"]
        assert [v.role for v in app.chat_screen.conversation.views] == ["user", "bot"]
        assert [m.role for m in app.store.messages(chat_id)] == ["user", "bot"]
        assert app.chat_screen.thread.messages[0]["content"] == "Hello"

        app.chat_screen.conversation.views[0].focus()
        await pilot.press("s")
        await wait_until(pilot, lambda: screen_name(app) == "TextEditScreen", "the editor")
        app.screen.query_one("TextArea").load_text("Be brief.")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert [m["role"] for m in app.chat_screen.thread.messages] == ["system", "user", "bot"]
        assert [v.role for v in app.chat_screen.conversation.views] == ["system", "user", "bot"]
        stored = app.store.messages(app.chat_screen.chat.chat_id)
        assert [m.role for m in stored] == ["system", "user", "bot"]

        app.chat_screen.conversation.views[2].focus()
        await pilot.press("delete")
        await wait_until(pilot, lambda: screen_name(app) == "ConfirmScreen", "the question")
        await pilot.press("y")
        await pilot.pause()
        assert [m["role"] for m in app.chat_screen.thread.messages] == ["system", "user"]
        assert len(app.store.messages(app.chat_screen.chat.chat_id)) == 2


async def test_palette_commands_system_prompt_and_clear(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        await send(pilot, "Hello")
        await palette_command(pilot, "system prompt")
        await wait_until(pilot, lambda: screen_name(app) == "TextEditScreen", "the editor")
        app.screen.query_one("TextArea").load_text("You are a pirate.")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.chat_screen.thread.messages[0] == {
            **app.chat_screen.thread.messages[0],
            "role": "system",
        }
        assert app.chat_screen.thread.messages[0]["content"] == "You are a pirate."

        app.chat_screen.action_clear_chat()
        await wait_until(pilot, lambda: screen_name(app) == "ConfirmScreen", "the question")
        await pilot.press("y")
        await pilot.pause()
        assert [m["content"] for m in app.chat_screen.thread.messages] == ["You are a pirate."]
        assert [m.content for m in app.store.messages(app.chat_screen.chat.chat_id)] == [
            "You are a pirate."
        ]


async def test_keymap_from_the_config_remaps_an_action(tmp_path):
    save_config(Config(keymap={"reroll": "ctrl+t"}))
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        await send(pilot, "Hello")
        await pilot.press("ctrl+t")
        await pilot.pause()
        await wait_idle(pilot)
        assert len(app.chat_screen.chat.versions(-1)) == 2


async def test_config_entries_the_app_cannot_use_are_named(tmp_path):
    """An unknown action id, a key that is none, or a theme that does not exist did nothing,
    silently; each is now named with its file, line and what is allowed, and the good
    entries still apply."""
    path = paths.config_dir() / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        'theme = "solarised"\n\n[keymap]\nrerol = "ctrl+t"\ncontinue = "ctrl+gg"\n'
        'reroll = "ctrl+t"\n'
    )
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        said = [n.message for n in app._notifications]
        assert any(
            m.startswith(f"{path}:4: [keymap] rerol: no action has this id")
            and ", reroll, " in m
            and "sampler.save" in m
            for m in said
        ), said
        assert any(
            m.startswith(f"{path}:5: [keymap] continue = 'ctrl+gg': 'ctrl+gg' is not a key")
            and '"ctrl+r", "f6"' in m
            for m in said
        ), said
        assert any(
            m.startswith(f"{path}:1: theme 'solarised' does not exist") and "nord" in m
            for m in said
        ), said
        assert app.theme == "textual-dark"
        await send(pilot, "Hello")
        await pilot.press("ctrl+t")  # the good entry applies
        await pilot.pause()
        await wait_idle(pilot)
        assert len(app.chat_screen.chat.versions(-1)) == 2


async def test_a_keymap_value_of_the_wrong_type_is_named(tmp_path):
    """``reroll = 5`` was an AttributeError from Textual at start."""
    path = paths.config_dir() / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[keymap]\nreroll = 5\n")
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        (note,) = [n for n in app._notifications if n.title == "Config file ignored"]
        assert note.message == (
            f'{path}:2: [keymap] reroll must be a string of keys like "ctrl+r" '
            '(several: "ctrl+r,f6"), not int'
        )


async def test_theme_choice_is_remembered(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        app.theme = "nord"
        await pilot.pause()
    assert load_config().theme == "nord"
    again = make_app(tmp_path / "chats.db")
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "nord"


async def test_a_bad_model_file_is_shown_with_the_fix(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    app = EzChatApp(ChatOptions(model=bad), store_path=tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "failed", False), "the error")
        text = str(app.screen.query_one("#loading-status").render())
        assert "broken.gguf" in text and "ezchat MODEL.gguf" in text
        # keys still work: typing does nothing harmful, and q quits
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_keys_work_while_the_bot_writes(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=1500)
        with holding("token", at_token(8)) as gate:
            await send(pilot, "Count from 1 to 1000, separated by commas.", wait=False)
            await wait_until(pilot, gate.held.is_set, "the reply held mid-stream")
            box = app.query_one("#input")
            await pilot.press("h", "i")
            assert box.text == "hi"
            # sending now keeps the text and says why
            assert app.chat_screen.generating
            await pilot.press("enter")
            assert box.text == "hi"
            assert any("press Escape" in n.message for n in app._notifications)
            await pilot.press("escape")
        await wait_idle(pilot)
        assert app.chat_screen.thread.last_result.stop_reason == "cancelled"


async def test_the_loading_screen_fills_as_llama_cpp_reads_the_model(tmp_path):
    from ezchat.tui.loading import LoadingScreen

    app = make_app(tmp_path / "chats.db")
    app.model_lock.acquire()  # hold the load back so the loading screen is surely up
    async with app.run_test(size=SIZE) as pilot:
        loading = app.screen
        assert isinstance(loading, LoadingScreen) and loading.loaded == 0.0
        # the footer offers only what works while loading
        shown = {active.binding.action for active in loading.active_bindings.values()}
        assert "app.quit" in shown and not shown & {"reroll", "stop", "edit_sampler"}
        app.model_lock.release()
        await wait_loaded(pilot)
        assert loading.loaded == 1.0
        assert not isinstance(app.screen, LoadingScreen)
        shown = {active.binding.action for active in app.screen.active_bindings.values()}
        assert {"reroll", "stop", "edit_sampler"} <= shown


async def test_quitting_mid_load_stops_llama_cpp_reading(tmp_path):
    from textual.worker import WorkerState

    app = make_app(tmp_path / "chats.db")
    app.model_lock.acquire()
    async with app.run_test(size=SIZE) as pilot:
        (load_worker,) = [w for w in app.workers if w.group == "model"]
        await wait_until(pilot, lambda: load_worker.state == WorkerState.RUNNING, "the load")
        await pilot.press("q")  # the worker is cancelled as the app closes
        await pilot.pause()
        app.model_lock.release()
        await wait_until(pilot, lambda: load_worker.is_finished, "the load to stop")
    assert app.model is None  # llama.cpp was told to stop: no model was built
