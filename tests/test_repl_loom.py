"""The loom in the REPL: ``!tree`` shows the chat's tree and ``!go N`` switches branches,
driven through the real prompt on the default model, greedy."""

from __future__ import annotations

import re

import pytest
from test_repl import ENTER, chat

import ezchat as ez
from ezchat.chat.tree import Node, TokenInfo
from ezchat.safetext import visible

TREE_LINE = re.compile(r"^([* ]) ( *)(\d+) (\w+) \((.*?)\): (.*)$")


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings) -> ez.Thread:
    return ez.Thread(model, "chatml", greedy)


def tree_lines(out: str) -> list[re.Match[str]]:
    return [m for line in out.splitlines() if (m := TREE_LINE.match(line))]


def rerolled_chat(thread: ez.Thread) -> tuple[Node, Node, Node]:
    """A message and two replies to it: the reply, and the reroll beside it (made active)."""
    chat(thread, f"Hello!{ENTER}!reroll{ENTER}")
    (user,) = [node for node in thread.tree.walk() if node.role == "user"]
    first, second = user.children
    assert thread.tree.active is second
    return user, first, second


def test_tree_prints_each_node_with_how_it_was_made_and_the_active_path(
    thread: ez.Thread,
) -> None:
    user, first, second = rerolled_chat(thread)
    out = chat(thread, f"!tree{ENTER}")
    lines = tree_lines(out)
    nodes = list(thread.tree.walk())
    assert (
        [int(m[3]) for m in lines] == [node.id for node in nodes] == [user.id, first.id, second.id]
    )
    on_path = set(thread.tree.active_path)
    for node, line in zip(nodes, lines, strict=True):
        mark, indent, _, who, how, text = line.groups()
        assert mark == ("*" if node in on_path else " ")
        assert len(indent) == 2 * node.depth
        assert who == {"user": "you", "bot": "bot"}[node.role]
        assert how.startswith(node.origin.describe())
        flat = " ".join(node.content.split())
        assert text.removesuffix("…") == flat[: len(text.removesuffix("…"))] and text
    # each reply keeps how the model weighed its tokens: "how" ends with their mean
    for node, line in ((first, lines[1]), (second, lines[2])):
        mean = node.mean_probability
        assert mean is not None and line[5] == f"{node.origin.describe()}, p {mean:.2f}"
    assert lines[0][5] == "message"  # typed: no probabilities
    assert lines[2][5].startswith("reroll")
    assert "(* marks the active path; !go N switches to node N)" in out


def test_tree_shows_a_replys_mean_token_probability_where_it_is_known(
    thread: ez.Thread, model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    _, first, _ = rerolled_chat(thread)
    # The first reply's first token as the model weighed it, from the same prompt: greedy
    # wrote the top candidate. Its node then knows one token's probability (as a reply
    # continued from text the model did not write knows only its own tokens').
    asked = ez.Thread(model, "chatml", greedy)
    asked.add_message("user", "Hello!")
    (top,) = model.candidates(asked.plan_prompt().tokens, 1)
    assert first.tokens is not None and first.tokens[0] == top.id
    first.token_info = [TokenInfo(top.id, float(top[1]))] + [None] * (len(first.tokens) - 1)
    (line,) = [m for m in tree_lines(chat(thread, f"!tree{ENTER}")) if int(m[3]) == first.id]
    assert line[5] == f"reply, p {top[1]:.2f}"


def test_go_switches_to_a_branch_prints_it_and_the_chat_goes_on_there(thread: ez.Thread) -> None:
    user, first, second = rerolled_chat(thread)
    out = chat(thread, f"!go {first.id}{ENTER}")
    assert thread.tree.active is first
    assert [m["content"] for m in thread.messages] == ["Hello!", first.content]
    assert f"you: Hello!\nbot: {visible(first.content)}\n" in out
    assert f"(now on node {first.id}'s branch: 2 message(s))" in out
    marks = {int(m[3]): m[1] for m in tree_lines(chat(thread, f"!tree{ENTER}"))}
    assert marks == {user.id: "*", first.id: "*", second.id: " "}
    # a message sent now continues the branch switched to; the other reply stays in the tree
    chat(thread, f"Thanks!{ENTER}")
    (thanks,) = [n for n in thread.tree.walk() if n.role == "user" and n.content == "Thanks!"]
    assert thanks.parent is first and thread.tree.nodes[second.id] is second
    assert [m["role"] for m in thread.messages] == ["user", "bot", "user", "bot"]


def test_a_wrong_node_number_is_one_line_and_changes_nothing(thread: ez.Thread) -> None:
    _, _, second = rerolled_chat(thread)
    before = list(thread.messages)
    out = chat(thread, f"!go 99{ENTER}!go x{ENTER}!go{ENTER}!go 0{ENTER}")
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: there is no node 99 in this chat; !tree lists them",
        "error: go needs a node number from !tree, e.g. !go 2, not 'x'",
        "error: go needs a node number from !tree, e.g. !go 2",
        "error: there is no node 0 in this chat; !tree lists them",
    ]
    assert thread.tree.active is second and list(thread.messages) == before


def test_tree_shows_hostile_text_as_pictures_and_an_empty_chat_says_so(
    thread: ez.Thread,
) -> None:
    assert "(the chat is empty: no tree yet)" in chat(thread, f"!tree{ENTER}")
    thread.add_message("user", "clear \x1b[2J the\nscreen \x07")
    out = chat(thread, f"!tree{ENTER}")
    assert "\x1b" not in out and "\x07" not in out
    assert visible("clear \x1b[2J the screen \x07") in out  # one line, controls as pictures
