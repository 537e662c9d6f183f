"""Reasoning on the real default model: a format whose reply prefix opens a ``<think>`` block,
so every greedy reply starts inside it. SmolLM2 never writes ``</think>`` itself, so the format
ends the block at the reply's first colon (a custom ``reasoning_end``): its greedy answer to the
question is "The three colours are:" and a list, so the lead-in is the reasoning and the list
the answer, both written by the model."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
from pathlib import Path

import pytest
from test_repl import _plain, chat
from tui_support import wait_idle, wait_until

import ezchat as ez
from ezchat.chat.reasoning import split_reply
from ezchat.chat.tree import Made, Origin
from ezchat.repl import DIM_OFF, DIM_ON
from ezchat.session import ChatOptions
from ezchat.settings import paths
from ezchat.storage.chatfile import read_chat_file, write_chat_file
from ezchat.storage.schema import MIGRATIONS
from ezchat.storage.store import ChatStore
from ezchat.tui import EzChatApp
from ezchat.tui.conversation import MessageView

THINK_FORMAT = """\
description = "ChatML whose reply prefix opens a <think> block"
system_prefix = "<|im_start|>system\\n"
system_suffix = "<|im_end|>\\n"
user_prefix = "<|im_start|>user\\n"
user_suffix = "<|im_end|>\\n"
bot_prefix = "<|im_start|>assistant\\n<think>\\n"
bot_suffix = "<|im_end|>\\n"
stops = ["<|im_end|>", "<|endoftext|>"]
reasoning_start = "<think>"
reasoning_end = ":"
"""
QUESTION = "Name three colours."


@pytest.fixture
def think_format(isolated_home: Path) -> ez.formats.Format:
    folder = paths.config_dir() / "formats"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "think.toml").write_text(THINK_FORMAT, encoding="utf-8")
    return ez.formats.load("think")


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings, think_format) -> ez.Thread:
    return ez.Thread(model, think_format, greedy)


def fresh_reply(thread: ez.Thread) -> ez.generation.GenerationResult:
    """The same prompt run again on the local model, with no reasoning parsing."""
    plan = thread.plan_prompt()
    return thread.model.start(plan.tokens, list(thread.format.stops), thread.sampler).run()


def test_format_file_sets_the_markers_and_the_prompt_opens_the_block(thread: ez.Thread) -> None:
    markers = thread.reasoning_markers
    assert (markers.start, markers.end) == ("<think>", ":")
    assert thread._prompt_opens


@pytest.mark.slow
def test_history_keeps_the_reasoning_apart_and_the_next_prompt_leaves_it_out(
    thread: ez.Thread,
) -> None:
    thread.add_message("user", QUESTION)
    expected = fresh_reply(thread)
    reasoning, answer = split_reply(expected.text, thread.reasoning_markers, opened=True)
    assert reasoning.strip() and answer.strip(), expected.text  # both parts are the model's

    reply = thread.start_reply()
    streamed = ["", ""]
    for _ in reply:
        streamed[0] += reply.parts[0]
        streamed[1] += reply.parts[1]
    message = reply.message
    assert (message["reasoning"], message["content"]) == (reasoning, answer)
    assert tuple(streamed) == (reasoning, answer)
    # token positions run through the reasoning: the reply's tokens are those generated
    assert thread.reply_tokens(message) == expected.tokens

    thread.add_message("user", "And three animals?")
    prompt = thread.inference_str_from_messages()
    assert reasoning.strip() not in prompt
    assert answer.strip() in prompt
    # the block the reply prefix opened is closed, empty, before the kept answer
    assert "<think>\n:" + answer in prompt


@pytest.mark.slow
def test_candidates_and_branching_inside_the_reasoning(thread: ez.Thread) -> None:
    thread.add_message("user", QUESTION)
    reply = thread.start_reply()
    reply.run()
    message = reply.message
    tokens = thread.reply_tokens(message)
    index = len(thread.messages) - 1
    candidates = thread.candidates_at(index, 1, 3)
    assert candidates[0].id == tokens[1]  # greedy: the top candidate is the token written
    other = candidates[1].id
    thread.start_branch(1, other).run()
    branched = thread.messages[-1]
    assert thread.reply_tokens(branched)[:2] == [tokens[0], other]
    assert thread.reply_text(branched) == thread.model.detokenize(thread.reply_tokens(branched))


@pytest.mark.slow
def test_repl_shows_the_reasoning_dim(thread: ez.Thread) -> None:
    master, slave = pty.openpty()
    try:
        with open(os.dup(slave), "w", encoding="utf-8") as terminal:
            chat(thread, f"{QUESTION}\r", terminal, color=True)
        shown = b""
        while select.select([master], [], [], 0.2)[0]:
            shown += os.read(master, 65536)
    finally:
        os.close(master)
        os.close(slave)
    message = thread.messages[-1]
    text = shown.decode("utf-8").replace("\r\n", "\n")
    start, end = text.index(DIM_ON), text.rindex(DIM_OFF)
    # each streamed piece is dimmed on its own; together they are the whole reasoning
    dimmed = text[start:end].replace(DIM_ON, "").replace(DIM_OFF, "")
    assert dimmed.strip() == message["reasoning"].strip()
    assert message["content"].strip().splitlines()[0][:20] in _plain(text[end:].encode())


def test_store_migrates_a_current_file_and_exports_keep_the_reasoning(
    tmp_path: Path, thread: ez.Thread
) -> None:
    path = tmp_path / "chats.sqlite3"
    conn = sqlite3.connect(path)  # a file as the schema before reasoning wrote it
    conn.executescript(MIGRATIONS[0])
    conn.executescript(MIGRATIONS[1])
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER NOT NULL);"
        "INSERT INTO schema_version VALUES (2);"
        "INSERT INTO chats (id, title, created, updated) VALUES (3, 'Before', 1.0e9, 1.0e9);"
        "INSERT INTO messages (id, chat_id, position, role, current) VALUES (1, 3, 0, 'bot', 0);"
        "INSERT INTO versions (message_id, idx, content) VALUES (1, 0, 'an old reply');"
    )
    conn.commit()
    conn.close()
    with ChatStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        [old] = store.messages(3)
        assert (old.content, old.reasoning) == ("an old reply", "")
        reroll = store.add_node(3, 0, "bot", "answer", reasoning="why", origin=Origin(Made.REROLL))
        store.update_node(3, reroll, "answer, edited")  # an edit keeps the reasoning
        [old] = store.messages(3)
        assert (old.content, old.reasoning, old.reasonings) == (
            "answer, edited",
            "why",
            ["", "why"],
        )
        exported = store.export_json(3)
        copy = store.messages(store.import_json(json.dumps(exported)))[0]
        assert (copy.versions, copy.reasonings) == (old.versions, old.reasonings)
        assert "<summary>Reasoning</summary>" in store.export_markdown(3)

    thread.add_message("user", QUESTION)
    reply = thread.start_reply()
    reply.run()
    message = reply.message
    saved = write_chat_file(tmp_path / "chat.json", thread)
    loaded = read_chat_file(saved)
    assert loaded.messages[-1] == {
        "role": "bot",
        "content": message["content"],
        "reasoning": message["reasoning"],
    }
    again = ez.Thread(thread.model, thread.format, thread.sampler, messages=loaded.messages)
    assert again.messages[-1]["reasoning"] == message["reasoning"]


@pytest.mark.slow
async def test_app_shows_the_reasoning_collapsed_and_expands_it(
    tmp_path: Path, think_format
) -> None:
    options = ChatOptions(sampler="GreedyDecoding", context_length=2048, seed=1234, format="think")
    app = EzChatApp(options, store_path=tmp_path / "chats.sqlite3")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.ready, "the model to load")
        await pilot.pause()
        app.chat_screen.thread.sampler.max_len_tokens = 24
        app.query_one("#input").insert(QUESTION)
        await pilot.press("enter")
        await wait_idle(pilot)
        message = app.chat_screen.thread.messages[-1]
        thought = message["reasoning"].strip()
        assert thought and message["content"].strip()
        view = app.query(MessageView).last()
        block = view.reasoning_block
        collapsed = str(block.render())
        assert block.display and collapsed.startswith("▸ Reasoning")
        assert thought not in collapsed
        assert thought not in view.body.source
        view.focus()
        await pilot.press("r")
        expanded = str(block.render())
        assert expanded.startswith("▾ Reasoning") and thought in expanded
        await pilot.press("r")
        assert str(block.render()) == collapsed
        # the saved chat keeps the reasoning apart too
        stored = app.chat_screen.chat.store.messages(app.chat_screen.chat.chat_id)[-1]
        assert (stored.content, stored.reasoning) == (message["content"], message["reasoning"])


SWITCHED_TEMPLATE = (
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n"
    "{{ message.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)


def test_the_thinking_switch_reaches_a_template_that_takes_it(
    model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    shared = ez.formats.from_jinja(SWITCHED_TEMPLATE, name="switched")
    thread = ez.Thread(model, shared, greedy)
    thread.add_message("user", QUESTION)
    assert thread.reasoning_markers.start == "<think>"
    assert thread.inference_str_from_messages().endswith("<|im_start|>assistant\n")
    thread.set_thinking(False)
    assert thread.inference_str_from_messages().endswith("<think>\n\n</think>\n\n")
    assert not thread._prompt_opens  # the block the prompt wrote is closed already
    assert shared.template_variables == {}  # the switch is this chat's alone
    thread.set_thinking(None)
    assert thread.inference_str_from_messages().endswith("<|im_start|>assistant\n")
