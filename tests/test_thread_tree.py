"""A Thread is a tree: every reroll, branch, continue and edit adds a node, nothing
is overwritten, and switching branches evaluates only what the paths do not share. Real model,
greedy."""

from __future__ import annotations

import pytest

import ezchat as ez
from ezchat.chat.tree import Made


@pytest.fixture
def thread(model: ez.Model, greedy: ez.SamplerSettings) -> ez.Thread:
    return ez.Thread(model, ez.formats.chatml, greedy)


def _texts(thread: ez.Thread) -> list[str]:
    return [m["content"] for m in thread.messages]


def test_a_reroll_is_a_sibling_and_switching_back_restores_the_first_branch(
    thread: ez.Thread,
) -> None:
    first = thread.send("Name a colour.")
    first_node = thread.node_at(-1)
    thread.send("Why that one?")
    first_path = _texts(thread)
    # back to the first reply and reroll it: a sibling, the old branch kept whole
    thread.switch_to(first_node)
    thread.tree.truncate_to(first_node)
    warm = ez.SamplerSettings(temp=1.5, seed=3, max_len_tokens=16)
    reply = thread.start_reroll(sampler=warm)
    reply.run()
    assert reply.node.origin.made is Made.REROLL
    assert thread.tree.siblings(reply.node) == [first_node, reply.node]
    assert _texts(thread)[-1] == reply.node.content and len(thread.messages) == 2
    # switching to the first reply follows its branch down to the follow-up again
    thread.switch_to(first_node)
    assert _texts(thread) == first_path and thread.messages[1]["content"] == first
    assert len(thread.tree) == 5


def test_switching_evaluates_only_the_tokens_after_the_common_prefix(
    thread: ez.Thread, model: ez.Model
) -> None:
    thread.send("Name a fruit.")
    fruit = thread.node_at(-1)
    thread.send("And a vegetable?")
    long_path = thread.tree.active
    thread.switch_to(fruit)
    thread.tree.truncate_to(fruit)
    thread.send("And a colour?")
    colour_tokens = thread._tokens_for(list(thread.messages), add_generation_prompt=False)
    thread.switch_to(long_path)
    vegetable_tokens = thread._tokens_for(list(thread.messages), add_generation_prompt=False)
    shared = 0
    for a, b in zip(colour_tokens, vegetable_tokens, strict=False):
        if a != b:
            break
        shared += 1
    report = thread.evaluate_path()
    assert report is thread.last_switch
    assert report.evaluated == len(vegetable_tokens) - shared
    assert 0 < report.evaluated < len(vegetable_tokens)


def test_a_branch_of_an_earlier_reply_keeps_what_came_after_the_old_one(
    thread: ez.Thread,
) -> None:
    thread.send("What is the capital of France?")
    thread.send("And of Italy?")
    before = _texts(thread)
    old = thread.node_at(1)
    second = thread.candidates_at(1, 1, k=3)[1]
    reply = thread.start(ez.ReplyKind.BRANCH, position=1, token=second.id, index=1)
    reply.run()
    assert reply.node.origin.describe() == "branch at token 1"
    assert thread.reply_tokens(thread.messages[1])[1] == second.id
    assert len(thread.messages) == 2  # the conversation follows the branch
    thread.switch_to(old)
    assert _texts(thread) == before  # the old reply and the turn after it are all there


def test_a_branch_can_take_typed_text_and_continue(thread: ez.Thread) -> None:
    thread.send("Name a colour.")
    reply = thread.start_branch(0, text="Honestly,")
    reply.run()
    assert thread.messages[-1]["content"].startswith("Honestly,")
    assert len(thread.tree.siblings(thread.node_at(-1))) == 2


def test_continue_and_edit_add_siblings(thread: ez.Thread, greedy: ez.SamplerSettings) -> None:
    short = ez.SamplerSettings(temp=0.0, max_len_tokens=4)
    thread.add_message("user", "Count from one to twenty.")
    thread.start_reply(sampler=short).run()
    cut = thread.node_at(-1)
    reply = thread.start(ez.ReplyKind.CONTINUE, sampler=short)
    reply.run()
    assert reply.node.origin.made is Made.CONTINUE
    assert reply.node.content.startswith(cut.content) and len(reply.node.content) > len(cut.content)
    assert thread.tree.siblings(cut) == [cut, reply.node]
    # an edit of the user message forks there: the old message and its replies stay
    user = thread.node_at(0)
    edited = thread.edit(0, "Count from one to three.")
    assert edited.origin.made is Made.EDIT and _texts(thread) == ["Count from one to three."]
    assert user.content == "Count from one to twenty." and len(user.children) == 2


def test_list_operations_on_messages_keep_the_tree_consistent(thread: ez.Thread) -> None:
    thread.add_message("user", "a")
    thread.add_message("bot", "b")
    thread.add_message("user", "c")
    thread.messages.insert(1, {"role": "bot", "content": "inserted"})
    assert _texts(thread) == ["a", "inserted", "b", "c"]
    del thread.messages[2]
    assert _texts(thread) == ["a", "inserted", "c"]
    thread.messages.pop()
    assert _texts(thread) == ["a", "inserted"]
    thread.messages = [thread.messages[0], {"role": "bot", "content": "other"}]
    assert _texts(thread) == ["a", "other"]
    # the earlier second message is still a sibling of the new one
    assert [n.content for n in thread.tree.siblings(thread.node_at(1))] == ["inserted", "other"]
    thread.reset()
    assert _texts(thread) == [] and len(thread.tree) == 3
