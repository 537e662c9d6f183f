"""The thinking switch, per chat: Qwen3's own chat template (the vendored llama.cpp file, as a
format file's ``template``) on the default model, saved with the chat, exported, flipped in
the real REPL; and a Thread handing its replies' reasoning to a template as llama-server does."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import httpx
import pytest
from cli_support import one_error_line, run_ezchat
from llamacpp_cases import templates_dir
from servers import start_template_server, stop_server
from test_repl import chat
from tui_support import wait_idle, wait_until

import ezchat as ez
from ezchat.errors import EzChatError, StoreError
from ezchat.session import ChatOptions, make_thread
from ezchat.settings import paths
from ezchat.storage.chatfile import read_chat_file, write_chat_file
from ezchat.storage.chats import chat_from_thread, thread_from_store
from ezchat.storage.store import ChatStore
from ezchat.tui import EzChatApp

QWEN3 = templates_dir() / "Qwen-Qwen3-0.6B.jinja"
# Qwen3's generation prompt without thinking: an empty block the model answers after.
NO_THINKING_TAIL = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
THINKING_TAIL = "<|im_start|>assistant\n"


def install_template_format(name: str, template: Path) -> None:
    """A user format file whose ``template`` is a llama.cpp template file (no GGUF needed)."""
    folder = paths.config_dir() / "formats"
    folder.mkdir(parents=True, exist_ok=True)
    text = template.read_text(encoding="utf-8")
    # a JSON string is a TOML basic string (ASCII escapes only)
    toml = f'description = "{template.name}"\ntemplate = {json.dumps(text)}\n'
    (folder / f"{name}.toml").write_text(toml, encoding="utf-8")


@pytest.fixture
def qwen3(isolated_home: Path) -> ez.formats.Format:
    install_template_format("qwen3think", QWEN3)
    return ez.formats.load("qwen3think")


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings, qwen3) -> ez.Thread:
    thread = ez.Thread(model, qwen3, greedy)
    thread.add_message("user", "Name three colours.")
    return thread


def test_an_empty_chat_renders_the_templates_own_generation_prompt_without_a_warning(
    model: ez.Model, greedy: ez.SamplerSettings, qwen3
) -> None:
    # Qwen3's template reads messages[0]: an empty chat (the app's context pane counting a new
    # chat and the next reply's prompt) renders with no fall-back to chatml and no warning
    empty = ez.Thread(model, qwen3, greedy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(empty) == (1 if model.add_bos else 0)
        assert empty.inference_str_from_messages() == THINKING_TAIL
        assert empty.switch_thinking(False) == "thinking off"
        assert empty.inference_str_from_messages() == NO_THINKING_TAIL
        stats = empty.context_stats()  # the app's context pane: the plan, then the counts
        assert (stats.in_context, stats.messages, stats.left_out) == (len(empty), 0, 0)
        empty.add_message("user", "Hi")
        assert len(empty) > 3
        assert empty.inference_str_from_messages().endswith(NO_THINKING_TAIL)


def test_the_switch_changes_qwen3s_prompt(thread: ez.Thread) -> None:
    assert thread.has_thinking_switch
    assert thread.inference_str_from_messages().endswith(THINKING_TAIL)
    assert thread.switch_thinking(False) == "thinking off"
    assert thread.inference_str_from_messages().endswith(NO_THINKING_TAIL)
    assert thread.switch_thinking(True) == "thinking on"
    assert thread.inference_str_from_messages().endswith(THINKING_TAIL)
    assert thread.switch_thinking(None) == "thinking default"


def test_a_format_without_a_switch_says_so_in_one_line(model: ez.Model) -> None:
    thread = ez.Thread(model, "chatml")
    with pytest.raises(EzChatError) as caught:
        thread.switch_thinking(False)
    message = str(caught.value)
    assert "\n" not in message and "has no thinking switch" in message
    assert thread.thinking is None


def test_the_switch_is_saved_and_restored_with_the_chat(
    thread: ez.Thread, model: ez.Model, tmp_path: Path
) -> None:
    thread.switch_thinking(False)
    path = tmp_path / "chats.sqlite3"
    with ChatStore(path) as store:
        chat_id = chat_from_thread(store, thread)
    with ChatStore(path) as store:  # closed and opened again
        assert store.chat_settings(chat_id)["thinking"] == "off"
        reopened = thread_from_store(store, chat_id, model)
        assert reopened.thinking is False
        assert reopened.inference_str_from_messages() == thread.inference_str_from_messages()
        store.update_chat(chat_id, thinking="on")
        assert thread_from_store(store, chat_id, model).thinking is True


def test_export_and_import_keep_the_switch(thread: ez.Thread, tmp_path: Path) -> None:
    thread.switch_thinking(False)
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        exported = store.export_json(chat_from_thread(store, thread))
        assert exported["settings"]["thinking"] == "off"
        assert "- thinking: `off`" in store.export_markdown(store.import_json(exported))
        copy = store.import_json(json.dumps(exported))
        assert store.chat_settings(copy)["thinking"] == "off"
        exported["settings"]["thinking"] = "maybe"
        with pytest.raises(StoreError, match=r"settings\.thinking is 'maybe'; use on, off"):
            store.import_json(exported)
        del exported["settings"]["thinking"]  # an export from before the switch was saved
        assert store.chat_settings(store.import_json(exported))["thinking"] == ""


def test_an_unknown_saved_switch_opens_the_chat_with_a_note(
    thread: ez.Thread, model: ez.Model, tmp_path: Path
) -> None:
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        chat_id = chat_from_thread(store, thread)
        store.update_chat(chat_id, thinking="sometimes")  # a newer ezchat's value, say
        notes: list[str] = []
        reopened = thread_from_store(store, chat_id, model, notes=notes)
    assert reopened.thinking is None
    assert notes == ["the chat's saved thinking is 'sometimes'; use on, off or default; using "
                     "the template's default"]  # fmt: skip


def test_the_repl_flips_the_switch(thread: ez.Thread, tmp_path: Path) -> None:
    saved = tmp_path / "chat.json"
    keys = f"!think\r!think off\r!prompt\r!save {saved}\r!think maybe\r!think default\r!prompt\r"
    shown = chat(thread, keys, color=False)
    lines = shown.splitlines()
    assert "(thinking default)" in lines and "(thinking off)" in lines
    first, second = shown.split("(thinking off)")[1], shown.split("(thinking default)")[-1]
    assert "<think>\n\n</think>" in first.split("(saved")[0]
    assert "<think>" not in second
    assert "error: thinking is 'maybe'; use on, off or default" in lines
    assert read_chat_file(saved).thinking is False
    # the help lists it
    assert any(line.strip().startswith("think on|off|default") for line in
               chat(thread, "!help\r", color=False).splitlines())  # fmt: skip


def test_the_repl_loads_the_switch_from_a_chat_file(thread: ez.Thread, tmp_path: Path) -> None:
    saved = tmp_path / "chat.json"
    thread.switch_thinking(False)
    write_chat_file(saved, thread)
    thread.switch_thinking(None)
    chat(thread, f"!load {saved}\r", color=False)
    assert thread.thinking is False


def test_the_repl_refuses_the_switch_where_the_format_has_none(model: ez.Model) -> None:
    thread = ez.Thread(model, "chatml")
    shown = chat(thread, "!think on\r", color=False)
    errors = [line for line in shown.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "format 'chatml' has no thinking switch" in errors[0]


def test_chat_options_set_the_switch(model: ez.Model, qwen3) -> None:
    thread = make_thread(model, ChatOptions(format="qwen3think", thinking=False))
    assert thread.thinking is False
    with pytest.raises(EzChatError, match="has no thinking switch"):
        make_thread(model, ChatOptions(format="chatml", thinking=True))


# --- a Thread's reasoning reaches the template as llama-server hands it over ----------------


def _llama_server_prompt(model_path: Path, template: Path, messages: list, log: Path) -> str:
    port, server = start_template_server(model_path, template, log)
    try:
        body = {"messages": messages, "chat_template_kwargs": {"enable_thinking": True}}
        reply = httpx.post(f"http://127.0.0.1:{port}/apply-template", json=body, timeout=30)
        reply.raise_for_status()
        return reply.json()["prompt"]
    finally:
        stop_server(server)


@pytest.mark.parametrize(
    ("template", "keeps"),
    [("Qwen-Qwen3-0.6B.jinja", False), ("GLM-4.7-Flash.jinja", True)],
    ids=["qwen3 drops past reasoning", "glm keeps it"],
)
def test_a_threads_reasoning_reaches_the_template_as_llama_server_hands_it(
    template: str, keeps: bool, model: ez.Model, model_path: Path, greedy, tmp_path: Path
) -> None:
    install_template_format("under_test", templates_dir() / template)
    thread = ez.Thread(model, ez.formats.load("under_test"), greedy)
    thread.add_message("user", "What is 2 + 2?")
    thread.messages.append(
        thread.message_from_dict(
            {"role": "bot", "content": "4.", "reasoning": "\nTwo plus two is four.\n"}
        )
    )
    thread.add_message("user", "Thanks.")
    # an OpenAI client sends the reply back as llama-server gave it: the reasoning apart
    sent = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4.", "reasoning_content": "Two plus two is four."},
        {"role": "user", "content": "Thanks."},
    ]
    expected = _llama_server_prompt(model_path, templates_dir() / template, sent, tmp_path / "log")
    ours = thread.inference_str_from_messages()
    assert ours == expected
    assert ("Two plus two is four." in ours) is keeps
    # the reasoning is message text: tokenized with special tokens off, as the answer is
    if keeps:
        segments = thread.format.segments(thread._render_messages(thread.messages))
        assert ("Two plus two is four.", True) in segments


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.slow
def test_ezchat_chat_takes_the_switch(qwen3) -> None:
    shown = run_ezchat(
        "chat", "--format", "qwen3think", "--no-thinking", input="!think\n", timeout=300
    )
    assert shown.returncode == 0, shown.stderr
    assert "(thinking off)" in shown.stdout.splitlines()


@pytest.mark.slow
def test_ezchat_chat_refuses_the_switch_where_the_format_has_none() -> None:
    refused = run_ezchat("chat", "--format", "chatml", "--thinking", input="", timeout=300)
    one_error_line(refused, "format 'chatml' has no thinking switch")


# --- the app: its thinking key (F9, id 'thinking') -------------------------------------------


@pytest.mark.slow
async def test_the_app_starts_with_the_switch_and_saves_a_flip(tmp_path: Path, qwen3) -> None:
    options = ChatOptions(
        sampler="GreedyDecoding", context_length=2048, seed=1234, format="qwen3think",
        thinking=False,
    )  # fmt: skip
    store_path = tmp_path / "chats.sqlite3"
    app = EzChatApp(options, store_path=store_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.ready, "the model to load")
        assert app.chat_screen.thread.thinking is False
        app.chat_screen.thread.sampler.max_len_tokens = 8
        app.query_one("#input").insert("Hi")
        await pilot.press("enter")
        await wait_idle(pilot)
        chat_id = app.chat_screen.chat.chat_id
        assert app.chat_screen.chat.store.chat_settings(chat_id)["thinking"] == "off"
        off_prompt = app.chat_screen.thread.inference_str_from_messages()
        await pilot.press("f9")  # the thinking key: off becomes on, and is saved
        await pilot.pause()
        assert app.chat_screen.thread.thinking is True, [n.message for n in app._notifications]
        assert any(n.message == "thinking on" for n in app._notifications)
        assert app.chat_screen.thread.inference_str_from_messages() != off_prompt
        assert app.chat_screen.chat.export_data()["settings"]["thinking"] == "on"
    with ChatStore(store_path) as store:
        assert store.chat_settings(chat_id)["thinking"] == "on"
    app = EzChatApp(options, store_path=store_path, chat_id=chat_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: app.ready and app.chat_screen.chat.chat_id == chat_id, "the chat"
        )
        assert (
            app.chat_screen.thread.thinking is True
        )  # the chat's own switch, over the start option
