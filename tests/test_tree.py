"""The chat tree as data (ezchat.chat.tree) and its token-probability blobs."""

from __future__ import annotations

import pytest

from ezchat.chat.tree import Made, Origin, TokenInfo, Tree
from ezchat.errors import StoreError
from ezchat.storage.tokeninfo import pack_token_info, unpack_token_info


def _message(role: str, text: str) -> dict:
    return {"role": role, "content": text}


def _chat() -> tuple[Tree, list]:
    tree = Tree()
    user = tree.append(_message("user", "hi"))
    first = tree.append(_message("bot", "hello"), Origin(Made.REPLY))
    follow = tree.append(_message("user", "how are you?"))
    return tree, [user, first, follow]


def test_append_builds_the_active_path_in_order():
    tree, (user, first, follow) = _chat()
    assert tree.active_path == [user, first, follow]
    assert [n.depth for n in tree.active_path] == [0, 1, 2]
    assert len(tree) == 3
    assert [n.id for n in tree.walk()] == [1, 2, 3]


def test_a_sibling_keeps_the_old_branch_and_switching_back_follows_it():
    tree, (user, first, follow) = _chat()
    second = tree.add_sibling(first, _message("bot", "hey"), Origin(Made.REROLL))
    assert tree.active_path == [user, second]
    assert tree.siblings(first) == [first, second]
    assert second.sibling_index() == (1, 2)
    # switching to the first reply follows its chosen child down again
    assert tree.switch_to(first) is follow
    assert tree.active_path == [user, first, follow]
    assert tree.sibling(first, 1) is second and tree.sibling(first, -1) is None
    # and the second reply's branch is remembered as chosen under the user message
    tree.switch_to(second)
    assert user.chosen is second


def test_truncate_makes_a_node_the_leaf_without_losing_its_children():
    tree, (user, first, follow) = _chat()
    tree.truncate_to(first)
    assert tree.active_path == [user, first]
    assert first.children == [follow]


def test_delete_removes_a_subtree_and_moves_the_active_path_to_a_sibling():
    tree, (user, first, follow) = _chat()
    second = tree.add_sibling(first, _message("bot", "hey"), Origin(Made.REROLL))
    tree.switch_to(first)
    removed = tree.delete(first)
    assert removed == [first, follow]
    assert tree.active_path == [user, second]
    assert set(tree.nodes) == {0, user.id, second.id}
    with pytest.raises(ValueError):
        tree.switch_to(first)


def test_restored_ids_are_kept_and_new_ones_follow_them():
    tree = Tree()
    a = tree.add(tree.root, _message("user", "a"), id=7)
    b = tree.append(_message("bot", "b"))
    assert (a.id, b.id) == (7, 8)
    with pytest.raises(ValueError):
        tree.add(tree.root, _message("user", "c"), id=7)


def test_origins_describe_and_round_trip():
    cases = [Origin(), Origin(Made.REROLL), Origin(Made.BRANCH, 12), Origin(Made.GROW, 2, 4)]
    for origin in cases:
        assert Origin.decode(origin.encode()) == origin
    assert Origin(Made.BRANCH, 12).describe() == "branch at token 12"
    assert Origin(Made.GROW, 2, 4).describe() == "grown 2 of 4"
    assert Origin.decode("from-the-future@1") == Origin()


def test_search_bookmarks_and_mean_probability():
    tree, (user, first, follow) = _chat()
    first.message["reasoning"] = "Greeting back"
    assert tree.search("GREETING") == [first]
    assert tree.search("how") == [follow]
    follow.bookmarked = True
    assert tree.bookmarks() == [follow]
    assert first.mean_probability is None
    first.token_info = [TokenInfo(1, 0.5), TokenInfo(2, 1.0)]
    assert first.mean_probability == pytest.approx(0.75)


def test_token_info_blobs_round_trip_and_damage_is_one_line():
    infos = [
        TokenInfo(5, 0.25, ((5, 0.25), (9, 0.125))),
        TokenInfo(49151, 1.0, ()),
    ]
    assert unpack_token_info(pack_token_info(infos)) == infos
    assert unpack_token_info(b"") == []
    with pytest.raises(StoreError, match="damaged"):
        unpack_token_info(pack_token_info(infos)[:-3])
    with pytest.raises(StoreError, match="format 9"):
        unpack_token_info(b"\x09")
