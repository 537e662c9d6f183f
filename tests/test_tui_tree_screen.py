"""The tree screen (ezchat/tui/tree_screen.py), pushed on the real app over trees built here:
its rows, the keys that move through them, Enter, bookmarks, deleting a subtree, searching,
hostile text, and a big tree opening fast."""

from __future__ import annotations

import random

import pytest
from tui_support import (
    SIZE,
    make_app,
    palette_command,
    send,
    wait_idle,
    wait_loaded,
    wait_until,
)

from ezchat.chat.tree import Made, Origin, TokenInfo, Tree
from ezchat.storage.store import ChatStore
from ezchat.tui.tree_rows import tree_rows
from ezchat.tui.tree_screen import TreeScreen
from ezchat.tui.tree_view import TreeView

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def _message(role: str, text: str) -> dict:
    return {"role": role, "content": text}


def forked_chat() -> tuple[Tree, dict]:
    """hi → (hello → how are you? → fine) | (hey, a reroll) | (yo, a branch); active: hey."""
    tree = Tree()
    nodes = {"hi": tree.append(_message("user", "hi"))}
    nodes["hello"] = tree.append(_message("bot", "hello"), Origin(Made.REPLY))
    nodes["hello"].token_info = [TokenInfo(1, 0.5), TokenInfo(2, 0.9)]
    nodes["how"] = tree.append(_message("user", "how are you?"))
    nodes["fine"] = tree.append(_message("bot", "fine, thanks"), Origin(Made.REPLY))
    nodes["hey"] = tree.add_sibling(nodes["hello"], _message("bot", "hey"), Origin(Made.REROLL))
    nodes["yo"] = tree.add_sibling(
        nodes["hello"], _message("bot", "yo there"), Origin(Made.BRANCH, 1)
    )
    tree.switch_to(nodes["hey"])
    return tree, nodes


def shown(view: TreeView) -> list[str]:
    """The lines the view draws now, as text."""
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


def line_of(view: TreeView, node) -> str:
    return view.render_line(view.row_of(node) - round(view.scroll_y)).text


async def open_tree(pilot, tree: Tree, results: list, **kwargs) -> TreeScreen:
    screen = TreeScreen(tree, **kwargs)
    pilot.app.push_screen(screen, results.append)
    await wait_until(pilot, lambda: pilot.app.screen is screen, "the tree screen")
    await pilot.pause()
    return screen


def test_rows_indent_only_where_the_chat_forks():
    tree, nodes = forked_chat()
    rows = tree_rows(tree)
    assert [(row.guides, row.node.content) for row in rows] == [
        ("", "hi"),
        ("├ ", "hello"),
        ("│ ", "how are you?"),
        ("│ ", "fine, thanks"),
        ("├ ", "hey"),
        ("└ ", "yo there"),
    ]
    collapsed = tree_rows(tree, {nodes["hello"].id})
    assert [row.node for row in collapsed] == [nodes[k] for k in ("hi", "hello", "hey", "yo")]
    assert collapsed[1].hidden == 2


async def test_the_screen_shows_the_tree_and_enter_picks_a_node(tmp_path):
    tree, nodes = forked_chat()
    app = make_app(tmp_path / "chats.db")
    results: list = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = await open_tree(pilot, tree, results)
        view = screen.view
        lines = shown(view)
        assert lines[0].startswith("●") and "user" in lines[0] and lines[0].endswith("hi")
        hello = line_of(view, nodes["hello"])
        assert "reply" in hello and "70%" in hello and "●" not in hello  # not on the path
        assert "●" in line_of(view, nodes["hey"]) and "reroll" in line_of(view, nodes["hey"])
        assert "branch at token 1" in line_of(view, nodes["yo"])
        assert view.cursor_node is nodes["hey"]  # it opens on the active leaf

        await pilot.press("k", "k", "k")
        assert view.cursor_node is nodes["hello"]
        await pilot.press("h")  # collapses hello's subtree
        assert view.row_of(nodes["how"]) is None and "(+2 hidden)" in line_of(view, nodes["hello"])
        await pilot.press("l")  # expands it again
        await pilot.press("l")  # and goes into its first child
        assert view.cursor_node is nodes["how"]
        await pilot.press("down", "h")  # fine has no children: h goes to its parent
        assert view.cursor_node is nodes["how"]
        await pilot.press("up", "up", "up")
        assert view.cursor_node is nodes["hi"]
        await pilot.press("j", "enter")
        await wait_until(pilot, lambda: results, "the screen to close")
    assert results == [nodes["hello"]]
    assert tree.active is nodes["hey"]  # switching is the caller's


async def test_bookmarks_delete_and_search(tmp_path):
    tree, nodes = forked_chat()
    nodes["fine"].message["reasoning"] = "They asked about HOW I feel."
    app = make_app(tmp_path / "chats.db")
    results: list = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = await open_tree(pilot, tree, results)
        view = screen.view

        await pilot.press("/", *"how", "enter")
        assert view.cursor_node is nodes["how"]
        assert view.hits == {nodes["how"].id, nodes["fine"].id}
        assert "hit 1 of 2" in str(screen.query_one("#tree-detail").render())
        await pilot.press("n")
        assert view.cursor_node is nodes["fine"]
        await pilot.press("n")  # round the end
        assert view.cursor_node is nodes["how"]
        await pilot.press("N")
        assert view.cursor_node is nodes["fine"]
        await pilot.press("/", "ctrl+u", *"nowhere", "enter")
        assert view.hits == set() and view.cursor_node is nodes["fine"]

        await pilot.press("k", "b")
        assert nodes["how"].bookmarked and "★" in line_of(view, nodes["how"])
        await pilot.press("k", "B")
        assert view.cursor_node is nodes["how"]
        await pilot.press("b")
        assert not nodes["how"].bookmarked

        await pilot.press("k", "d")  # hello and the two under it
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", "confirm")
        assert "and the 2 under it" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("n")  # no: nothing goes
        await wait_until(pilot, lambda: app.screen is screen, "the tree again")
        assert len(tree) == 6
        await pilot.press("d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", "confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.screen is screen, "the tree again")
        assert len(tree) == 3 and screen.deleted == [nodes["hello"], nodes["how"], nodes["fine"]]
        assert view.cursor_node is nodes["hey"]
        assert [row.node for row in view.rows] == [nodes["hi"], nodes["hey"], nodes["yo"]]
        await pilot.press("escape")
        await wait_until(pilot, lambda: results, "the screen to close")
    assert results == [None]


async def test_node_text_is_shown_safely(tmp_path):
    tree = Tree()
    tree.append(_message("user", "\x1b]0;owned\x07 title\r\nline two\u202eevil"))
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = await open_tree(pilot, tree, [])
        line = shown(screen.view)[0]
        assert "␛]0;owned␇ title line two\ufffdevil" in line
        assert "\x1b" not in line and "\u202e" not in line


def big_tree(count: int, seed: int = 7) -> Tree:
    """A chat of ``count`` nodes: long runs of turns that fork now and then, some deep."""
    rng = random.Random(seed)
    tree = Tree()
    parent, made = tree.root, []
    while len(tree) < count:
        role = "user" if parent.role != "user" else "bot"
        origin = Origin(Made.REPLY if role == "bot" else Made.MESSAGE)
        node = tree.add(parent, _message(role, f"message {len(tree)} " * 20), origin)
        node.token_info = [TokenInfo(1, rng.random()) for _ in range(8)]
        made.append(node)
        # mostly the conversation goes on; now and then it forks at an earlier node
        parent = node if rng.random() < 0.9 else rng.choice(made)
    return tree


async def test_a_2000_node_tree_opens_at_the_active_leaf_and_pages(tmp_path):
    """Every node gets a row, the cursor starts on the active leaf, and the paging keys move
    by whole pages (benchmarks/tree_screen.py measures how fast)."""
    tree = big_tree(2000)
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = TreeScreen(tree)
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.query(TreeView) and screen.view.rows, "the tree")
        await pilot.pause()
        view = screen.view
        assert len(view.rows) == 2000
        assert view.cursor_node is tree.active
        assert "●" in line_of(view, tree.active)  # scrolled to the active leaf
        await pilot.press("g", "pagedown", "pagedown")
        assert view.cursor == 2 * view.page
        await pilot.press("G")
        assert view.cursor == 1999
        await pilot.press("pageup")
        assert view.cursor == 1999 - view.page


async def test_the_tree_key_switches_the_conversation_to_an_earlier_reply(tmp_path):
    """Two rerolls on the real model, then ctrl+t, up to the first reply, Enter: the
    conversation shows the first reply again; the switch, the follow-up on it and a bookmark
    are saved in the same stored chat, which reopens as that tree."""
    app = make_app(tmp_path / "chats.db", sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        screen = app.chat_screen
        screen.thread.sampler.seed = 77
        await send(pilot, "Tell me something about cats.")
        for _ in range(2):
            await pilot.press("ctrl+r")
            await wait_idle(pilot)
        tree = screen.thread.tree
        user = tree.active_path[0]
        first, second, third = user.children
        assert [n.origin.made for n in (first, second, third)] == [
            Made.REPLY,
            Made.REROLL,
            Made.REROLL,
        ]
        assert len({first.content, second.content, third.content}) == 3
        saved_chat = screen.chat.chat_id

        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen), "the tree screen")
        await pilot.pause()
        assert app.screen.view.cursor_node is third
        await pilot.press("k", "k")
        assert app.screen.view.cursor_node is first
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the chat again")
        await wait_idle(pilot)
        assert tree.active is first
        assert [m["content"] for m in screen.thread.messages] == [user.content, first.content]
        views = screen.conversation.views
        assert [view.content for view in views] == [user.content, first.content]

        # the switch is saved in the same chat: a follow-up goes under the first reply, and
        # bookmarks set on the tree screen are saved too
        await send(pilot, "And dogs?")
        assert screen.chat.chat_id == saved_chat
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen), "the tree screen")
        await pilot.pause()
        app.screen.view.go_to(second)
        await pilot.press("b", "escape")
        await wait_until(pilot, lambda: app.screen is screen, "the chat again")
        assert second.bookmarked
        marked = [second.id]
    with ChatStore(tmp_path / "chats.db") as store:
        stored = store.load_tree(saved_chat)
        path = [n.content for n in stored.active_path]
        assert path[:2] == [user.content, first.content] and path[2] == "And dogs?"
        assert len(stored.siblings(stored.nodes[first.id])) == 3
        assert [n.id for n in stored.walk() if n.bookmarked] == marked


async def test_the_palette_opens_the_tree_and_a_deleted_reply_leaves_the_conversation(tmp_path):
    app = make_app(tmp_path / "chats.db", sampler="HighTempSampling")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=8)
        screen = app.chat_screen
        screen.thread.sampler.seed = 77
        await send(pilot, "Name a colour.")
        await pilot.press("ctrl+r")
        await wait_idle(pilot)
        user, first, second = screen.thread.tree.walk()
        assert screen.thread.tree.active is second

        await palette_command(pilot, "Chat tree")
        await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen), "the tree screen")
        await pilot.pause()
        await pilot.press("d")  # the cursor is on the active reply, the reroll
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", "confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, TreeScreen), "the tree again")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the chat again")
        await wait_idle(pilot)
        assert second.id not in screen.thread.tree.nodes
        assert screen.thread.tree.active is first  # the path moved to the remaining reply
        views = screen.conversation.views
        assert [view.content for view in views] == [user.content, first.content]
