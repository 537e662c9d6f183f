"""A stored chat is a tree: the v5 migration of a v4 file, the node rows, export and import of
the whole tree, and damaged rows, in real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ezchat.chat.tree import Made, Origin, TokenInfo, Tree
from ezchat.errors import StoreError
from ezchat.storage.schema import MIGRATIONS, SCHEMA_VERSION
from ezchat.storage.store import ChatStore

V4 = 4  # the schema before chats were trees


def _v4_file(path: Path) -> None:
    """A saved-chats file as ezchat wrote it before trees, made with the first four
    migrations: a chat whose reply was rerolled twice and whose follow-up has two versions
    (a branch), each version shown as the user left it, plus an empty chat."""
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:V4]:
        conn.executescript(script)
    conn.executescript(
        f"""
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES ({V4});
        INSERT INTO chats (id, title, created, updated, format, thinking)
            VALUES (3, 'Colours', 1.0e9, 1.0e9, 'chatml', 'off'), (4, 'Empty', 1.0e9, 1.0e9,
            '', '');
        INSERT INTO messages (id, chat_id, position, role, current) VALUES
            (10, 3, 0, 'system', 0), (11, 3, 1, 'user', 0), (12, 3, 2, 'bot', 1),
            (13, 3, 3, 'user', 1), (14, 3, 4, 'bot', 0);
        INSERT INTO versions (message_id, idx, content, tokens, reasoning) VALUES
            (10, 0, 'You are terse.', NULL, ''),
            (11, 0, 'Name a colour.', NULL, ''),
            (12, 0, 'Red.', X'05000000', 'warm'),
            (12, 1, 'Blue.', X'06000000', 'cold'),
            (12, 2, 'Green.', NULL, ''),
            (13, 0, 'Why?', NULL, ''),
            (13, 1, 'Why blue?', NULL, ''),
            (14, 0, 'The sky.', X'0700000008000000', '');
        """
    )
    conn.commit()
    conn.close()


def _shape(tree: Tree) -> list[tuple]:
    """Every node as (id, parent id, role, content, reasoning, origin), in tree order."""
    return [
        (
            node.id,
            node.parent.id,
            node.role,
            node.content,
            (node.message or {}).get("reasoning", ""),
            node.origin.encode(),
        )
        for node in tree.walk()
    ]


def test_a_v4_file_migrates_to_a_tree_with_every_version_and_the_same_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chats.sqlite3"
    _v4_file(path)
    with ChatStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        tree = store.load_tree(3)
        # the conversation as it was shown: the current version of each message
        assert [n.content for n in tree.active_path] == [
            "You are terse.",
            "Name a colour.",
            "Blue.",
            "Why blue?",
            "The sky.",
        ]
        assert _shape(tree) == [
            (1, 0, "system", "You are terse.", "", "message"),
            (2, 1, "user", "Name a colour.", "", "message"),
            (3, 2, "bot", "Red.", "warm", "reply"),
            (4, 2, "bot", "Blue.", "cold", "version"),
            (6, 4, "user", "Why?", "", "message"),
            (7, 4, "user", "Why blue?", "", "version"),
            (8, 7, "bot", "The sky.", "", "reply"),
            (5, 2, "bot", "Green.", "", "version"),
        ]
        assert [n.tokens for n in tree.active_path if n.role == "bot"] == [[6], [7, 8]]
        assert tree.nodes[3].tokens == [5]
        # the list view and the chat list read the same path
        assert [m.content for m in store.messages(3)][2:4] == ["Blue.", "Why blue?"]
        assert store.messages(3)[2].versions == ["Red.", "Blue.", "Green."]
        assert store.chat(3).n_messages == 5
        assert store.chat_settings(3)["thinking"] == "off"
        assert len(store.load_tree(4)) == 0 and store.chat(4).n_messages == 0
        tables = {row[0] for row in store._connection().execute("SELECT name FROM sqlite_master")}
        assert "nodes" in tables and not {"messages", "versions"} & tables  # dropped


def test_nodes_are_saved_as_they_appear_and_reopen_as_the_same_tree(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    live = Tree()  # the same steps on a live Tree and in the store
    infos = [TokenInfo(5, 0.5, ((5, 0.5), (9, 0.25))), TokenInfo(6, 1.0)]
    with ChatStore(path) as store:
        chat = store.create_chat()
        question = live.append({"role": "user", "content": "Name a colour."})
        store.save_node(chat, question)
        first = live.append({"role": "bot", "content": ""}, Origin(Made.REPLY))
        store.save_node(chat, first)
        for partial in ("Re", "Red."):  # a reply streams into its node
            first.message["content"] = partial
            store.update_node(chat, first.id, partial)
        first.tokens, first.token_info = [5, 6], infos
        store.update_node(chat, first.id, "Red.", tokens=[5, 6], token_info=infos)
        for text in ("Blue.", "Green."):  # rerolled twice
            node = live.add_sibling(first, {"role": "bot", "content": text}, Origin(Made.REROLL))
            store.save_node(chat, node)
        live.switch_to(first)  # back to the first reply with ←, then a follow-up
        store.set_active_leaf(chat, live.active.id)
        follow = live.append({"role": "user", "content": "Why red?"})
        assert store.add_message(chat, "user", "Why red?") == follow.id
        live.switch_to(live.nodes[4])  # → to the third reply
        store.set_active_leaf(chat, 4)
        live.nodes[4].bookmarked = True
        store.set_bookmark(chat, 4)
    with ChatStore(path) as reopened:
        tree = reopened.load_tree(chat)
        assert _shape(tree) == _shape(live)
        assert [n.id for n in tree.active_path] == [n.id for n in live.active_path] == [1, 4]
        assert tree.nodes[2].token_info == infos and tree.nodes[2].tokens == [5, 6]
        assert tree.bookmarks() == [tree.nodes[4]]
        # each node remembers the child followed last: back to the first reply goes on to
        # its follow-up, as in the live tree
        assert tree.switch_to(tree.nodes[2]).id == live.switch_to(live.nodes[2]).id == 5
        assert reopened.switch_to(chat, 2).active.id == 5


def test_deleting_a_subtree_moves_the_path_as_the_tree_does(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        chat = store.create_chat()
        user = store.add_message(chat, "user", "hi")
        first = store.add_message(chat, "bot", "hello")
        store.add_message(chat, "user", "how are you?")
        second = store.add_node(chat, user, "bot", "hey", origin=Origin(Made.REROLL))
        store.switch_to(chat, first)
        assert store.delete_subtree(chat, first) == [first, 3]
        tree = store.load_tree(chat)
        assert [n.id for n in tree.active_path] == [user, second]
        assert set(tree.nodes) == {0, user, second}
        with pytest.raises(StoreError, match=f"chat {chat} has no saved message {first}"):
            store.set_active_leaf(chat, first)


def test_export_and_import_carry_the_whole_tree(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    _v4_file(path)
    with ChatStore(path) as store:
        store.set_bookmark(3, 5)
        exported = store.export_json(3)
        assert exported["version"] == 2 and exported["active"] == 8
        assert len(exported["nodes"]) == 8
        copy = store.import_json(json.dumps(exported))
        assert _shape(store.load_tree(copy)) == _shape(store.load_tree(3))
        assert [n.id for n in store.load_tree(copy).active_path] == [1, 2, 4, 7, 8]
        again = store.export_json(copy)
        for key in ("title", "settings", "nodes", "active"):
            assert again[key] == exported[key]

        def body(markdown: str) -> str:  # after the settings and the time it was saved
            return markdown.split("- saved: ", 1)[1].split("\n", 1)[1]

        assert body(store.export_markdown(copy)) == body(store.export_markdown(3))
        markdown = store.export_markdown(3)
        assert "## Bot (version 2 of 3)" in markdown and "Why blue?" in markdown
        assert "Red." not in markdown and "Why?\n" not in markdown


def test_a_version_1_export_imports_as_the_tree_the_migration_makes(tmp_path: Path) -> None:
    """An export written before trees: messages, each with its versions."""
    old_export = {
        "kind": "ezchat-chat",
        "version": 1,
        "title": "Colours",
        "settings": {"format": "chatml"},
        "messages": [
            {"role": "user", "versions": ["Name a colour."], "current": 0},
            {
                "role": "bot",
                "versions": ["Red.", "Blue.", "Green."],
                "current": 1,
                "reasonings": ["warm", "cold", ""],
            },
            {"role": "user", "versions": ["Why?", "Why blue?"], "current": 1},
            {"role": "bot", "versions": ["The sky."], "current": 0},
        ],
    }
    path = tmp_path / "chats.sqlite3"
    _v4_file(path)
    with ChatStore(path) as store:
        chat = store.import_json(old_export)
        migrated = [row[2:] for row in _shape(store.load_tree(3))[1:]]  # no system prompt
        imported = [row[2:] for row in _shape(store.load_tree(chat))]
        assert sorted(imported) == sorted(migrated)
        assert [n.content for n in store.load_tree(chat).active_path] == [
            "Name a colour.",
            "Blue.",
            "Why blue?",
            "The sky.",
        ]


@pytest.mark.parametrize(
    ("nodes", "active", "complaint"),
    [
        ("x", 0, "'nodes' must be a list"),
        ([{"id": 1, "role": "user", "content": "a"}] * 2, 0, "node 2 'id' must be a whole"),
        ([{"id": 1, "parent": 9, "role": "user", "content": "a"}], 0, "node 1 'parent' must"),
        ([{"id": 1, "role": "narrator", "content": "a"}], 0, "node 1: unknown role"),
        ([{"id": 1, "role": "user", "content": "a", "chosen": 1}], 0, "'chosen' of node id 1"),
        ([{"id": 1, "role": "user", "content": "a"}], 5, "'active' must be 0 or the id"),
    ],
)
def test_import_of_a_bad_tree_names_what_is_wrong(
    tmp_path: Path, nodes: object, active: int, complaint: str
) -> None:
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        data = {"kind": "ezchat-chat", "version": 2, "nodes": nodes, "active": active}
        with pytest.raises(StoreError, match=complaint) as caught:
            store.import_json(data)
        assert "\n" not in str(caught.value)
        assert store.chats() == []  # nothing half-imported


def test_a_damaged_node_row_is_one_line_and_the_rest_of_the_chat_opens(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    _v4_file(path)
    ChatStore(path).close()  # migrated
    with sqlite3.connect(path) as conn:  # damage the file behind ezchat's back
        conn.execute("UPDATE nodes SET parent = 99 WHERE chat_id = 3 AND id = 5")
        conn.execute("UPDATE nodes SET token_info = X'01FF' WHERE chat_id = 3 AND id = 8")
    with ChatStore(path) as store:
        notes: list[str] = []
        tree = store.load_tree(3, notes)
        assert len(notes) == 2 and all("\n" not in note for note in notes)
        probabilities, orphan = sorted(notes)
        assert orphan == (
            "chat 3: saved message 5 is damaged (its parent 99 is missing); it and the "
            "messages under it are left out"
        )
        assert probabilities.startswith("chat 3: message 8: a saved reply's token probabilities")
        assert 5 not in tree.nodes and tree.nodes[8].token_info is None
        assert tree.nodes[8].content == "The sky."  # its text is kept
        assert [n.id for n in tree.active_path] == [1, 2, 4, 7, 8]
