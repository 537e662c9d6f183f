"""``Thread.grow`` on the real default model: N replies recorded as sibling nodes under one
parent ("grown i of n"), tokens and TokenInfo on each node, the first active, a stop keeping
every partial, and the conversation continuing from the one picked."""

from __future__ import annotations

import pytest

import ezchat as ez
from ezchat.chat.tree import Made, Origin
from ezchat.engine.grow import grow_sampler
from ezchat.errors import EzChatError


@pytest.fixture
def warm() -> ez.SamplerSettings:
    return ez.SamplerSettings(temp=0.8, seed=21, max_len_tokens=24)


def _thread(model: ez.Model, greedy: ez.SamplerSettings) -> ez.Thread:
    thread = ez.Thread(model, "auto", greedy)
    thread.add_message("user", "Write a short poem about the sea.")
    return thread


@pytest.mark.slow
def test_grown_replies_are_siblings_under_the_user_message(model: ez.Model, greedy, warm) -> None:
    thread = _thread(model, greedy)
    user = thread.node_at(0 if thread.messages[0]["role"] == "user" else 1)
    prompt = thread.plan_prompt().tokens
    grown = thread.grow(3, warm)
    seen = {0: "", 1: "", 2: ""}
    for seq, event in grown:
        seen[seq] += event.text
    nodes = grown.nodes

    assert [node.parent for node in nodes] == [user] * 3
    assert [node.origin for node in nodes] == [Origin(Made.GROW, i, 3) for i in (1, 2, 3)]
    assert nodes[0].origin.describe() == "grown 1 of 3"
    assert thread.tree.active is nodes[0] and thread.messages[-1] is nodes[0].message
    for i, node in enumerate(nodes):
        alone = model.start(prompt, list(thread.format.stops), grow_sampler(warm, i)).run()
        assert node.content == alone.text == seen[i]
        assert node.role == "bot"
        if alone.stop_reason != "stop_string":
            assert node.tokens == alone.tokens
            assert [info.id for info in node.token_info] == alone.tokens


def test_growing_after_a_reply_keeps_it_beside_the_new_ones(model: ez.Model, greedy, warm) -> None:
    thread = _thread(model, greedy)
    thread.start_reply().run()
    first = thread.tree.active
    grown = thread.grow(2, warm)
    grown.run()
    assert thread.tree.siblings(first) == [first, *grown.nodes]
    assert first.origin.made is Made.REPLY


def test_a_stop_records_every_partial(model: ez.Model, greedy, warm) -> None:
    thread = _thread(model, greedy)
    grown = thread.grow(3, warm.replace(max_len_tokens=200))
    for count, _ in enumerate(grown, start=1):
        if count == 3 * 4:
            grown.cancel()
    assert [r.stop_reason for r in grown.results] == ["cancelled"] * 3
    for node, result in zip(grown.nodes, grown.results, strict=True):
        assert node.content == result.text and 4 <= len(node.tokens) < 200


def test_picking_one_continues_the_chat_from_it(model: ez.Model, greedy) -> None:
    thread = _thread(model, greedy)
    grown = thread.grow(2, ez.SamplerSettings(temp=0.8, seed=3, max_len_tokens=16))
    grown.run()
    picked = grown.pick(1)
    assert thread.messages[-1] is picked.message
    thread.add_message("user", "Thank you.")
    thread.start_reply().run()
    assert thread.node_at(len(thread.messages) - 3) is picked
    with pytest.raises(EzChatError, match="pick 1 to 2"):
        grown.pick(5)


def test_growing_needs_a_message_and_at_least_one(model: ez.Model, greedy) -> None:
    thread = ez.Thread(model, "auto", greedy)
    with pytest.raises(EzChatError, match="send a message first"):
        thread.grow(2)
    thread.add_message("user", "Hello")
    with pytest.raises(EzChatError, match="at least 1"):
        thread.grow(0)
    assert thread.tree.active.role == "user"  # nothing changed


# --- the REPL's !alt and the config's [loom] grow ---


def _repl_chat(thread: ez.Thread, keys: str) -> str:
    from test_repl import chat

    return chat(thread, keys)


@pytest.mark.slow
def test_alt_in_the_repl_grows_lists_and_picks(model: ez.Model, greedy) -> None:
    thread = ez.Thread(model, "auto", greedy.replace(max_len_tokens=16))
    screen = _repl_chat(thread, "Write a short poem about the sea.\rtemp 0.8\rseed 9\r!alt 3\r2\r")
    active = thread.tree.active
    grown = thread.tree.siblings(active)
    assert active.origin == Origin(Made.GROW, 2, 3)
    assert [node.origin.at for node in grown if node.origin.made is Made.GROW] == [1, 2, 3]
    for i, node in enumerate(n for n in grown if n.origin.made is Made.GROW):
        line = next(line for line in screen.splitlines() if line.startswith(f"{i + 1}) "))
        assert " ".join(node.content.split())[:30] in line
    assert "(reply 2 of 3 continues the chat" in screen


def test_alt_without_a_number_grows_as_many_as_the_config_says(model: ez.Model, greedy) -> None:
    from ezchat.settings import config

    config.config_path().parent.mkdir(parents=True, exist_ok=True)
    config.config_path().write_text("[loom]\ngrow = 2\n", encoding="utf-8")
    thread = ez.Thread(model, "auto", greedy.replace(max_len_tokens=8))
    _repl_chat(thread, "Hello\r!alt\r\r")
    grown = [n for n in thread.tree.siblings(thread.tree.active) if n.origin.made is Made.GROW]
    assert [n.origin for n in grown] == [Origin(Made.GROW, 1, 2), Origin(Made.GROW, 2, 2)]
    assert thread.tree.active is grown[0]  # Enter picks the first


def test_bad_grow_counts_are_one_line_errors(model: ez.Model, greedy) -> None:
    from ezchat.errors import UserFileError
    from ezchat.settings import config

    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[loom]\ngrow = 0\n", encoding="utf-8")
    with pytest.raises(UserFileError, match=r"config.toml:2: \[loom\] grow is how many"):
        config.load_config()
    path.write_text("[loom]\ngrow = 3\n", encoding="utf-8")
    assert config.load_config().grow == 3
    thread = ez.Thread(model, "auto", greedy.replace(max_len_tokens=8))
    screen = _repl_chat(thread, "Hi\r!alt many\r")
    assert "error: !alt takes how many replies to grow, 1 to 16" in screen
    assert [m["role"] for m in thread.messages][-2:] == ["user", "bot"]  # the chat is intact
