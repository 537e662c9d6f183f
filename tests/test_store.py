"""Saved chats in real SQLite files, and resuming a chat's KV state on the real model."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import ezchat as ez
from ezchat.chat.samplers import sampler_setting
from ezchat.chat.tree import Made, Origin, TokenInfo
from ezchat.errors import StoreError
from ezchat.settings import paths
from ezchat.storage.chats import (
    chat_from_thread,
    restore_state,
    sampler_from_setting,
    save_thread_state,
    thread_from_store,
)
from ezchat.storage.markdown import sampler_label
from ezchat.storage.messages import StoredMessage, title_from_text
from ezchat.storage.schema import (
    DEFAULT_TITLE,
    MIGRATIONS,
    SCHEMA_VERSION,
    pack_tokens,
    unpack_tokens,
)
from ezchat.storage.store import ChatStore, ChatSummary

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "chats.sqlite3"


@pytest.fixture
def store(store_path: Path) -> ChatStore:
    with ChatStore(store_path) as opened:
        yield opened


def _fill(store: ChatStore) -> tuple[int, list[int]]:
    """A chat with a system prompt, a question, and a reply with two versions (siblings); the
    ids are the nodes of the active path."""
    chat = store.create_chat(model="smol.gguf", format="chatml", sampler="GreedyDecoding")
    ids = [
        store.add_message(chat, "system", "You are terse."),
        store.add_message(chat, "user", "Name a colour."),
        store.add_message(chat, "bot", "Red."),
    ]
    ids[2] = store.add_node(chat, ids[1], "bot", "Blue.", origin=Origin(Made.REROLL))
    return chat, ids


# --- chats ---------------------------------------------------------------------------------------


def test_default_path_is_in_the_data_dir_and_created() -> None:
    with ChatStore() as store:
        assert store.path == paths.data_dir() / "chats.sqlite3"
        assert store.path.is_file()
        mode = store._connection().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_create_list_rename_delete(store: ChatStore) -> None:
    assert store.chats() == [] and store.last_chat() is None
    first = store.create_chat("First", model="a.gguf")
    second = store.create_chat(model="b.gguf", format="chatml", system_prompt="Be brief.")
    listed = store.chats()
    assert [c.id for c in listed] == [second, first]  # newest first
    assert isinstance(listed[0], ChatSummary)
    assert listed[0].title == DEFAULT_TITLE and listed[0].n_messages == 0
    assert listed[0].model == "b.gguf" and listed[0].created <= listed[0].updated
    assert store.chat_settings(second) == {
        "model": "b.gguf",
        "format": "chatml",
        "sampler": "",
        "system_prompt": "Be brief.",
        "thinking": "",
    }

    store.add_message(first, "user", "hello")  # a change moves the chat to the top
    assert store.last_chat().id == first
    assert store.chat(first).n_messages == 1

    store.rename_chat(second, "Renamed")
    assert store.chat(second).title == "Renamed"
    assert store.last_chat().id == second

    store.update_chat(first, format="llama3", sampler="DefaultSampling")
    assert store.chat_settings(first)["format"] == "llama3"
    with pytest.raises(ValueError, match="unknown chat setting colour"):
        store.update_chat(first, colour="red")

    store.delete_chat(first)
    assert [c.id for c in store.chats()] == [second]
    with pytest.raises(StoreError, match=f"no saved chat with id {first}; see `ezchat"):
        store.chat(first)
    with pytest.raises(StoreError, match="no saved chat"):
        store.add_message(first, "user", "lost?")


def test_title_comes_from_the_first_user_message(store: ChatStore) -> None:
    chat = store.create_chat()
    store.add_message(chat, "system", "You are a pirate.")
    assert store.chat(chat).title == DEFAULT_TITLE
    question = "How do   I tie\na bowline knot when the rope is wet and my hands are cold?"
    store.add_message(chat, "user", question)
    title = store.chat(chat).title
    assert title == title_from_text(question)
    assert title.startswith("How do I tie a bowline knot") and title.endswith("…")
    assert len(title) <= 41 and "\n" not in title
    store.add_message(chat, "user", "Another question")
    assert store.chat(chat).title == title

    named = store.create_chat("Knots")
    store.add_message(named, "user", "Something else")
    assert store.chat(named).title == "Knots"
    assert title_from_text("Short one") == "Short one"


# --- messages and versions -----------------------------------------------------------------------


def test_versions_are_siblings_on_the_active_path(store: ChatStore) -> None:
    chat, (_, user, reply) = _fill(store)
    message = store.messages(chat)[2]
    assert isinstance(message, StoredMessage)
    assert (message.versions, message.current, message.content) == (["Red.", "Blue."], 1, "Blue.")

    rerolled = store.add_node(chat, user, "bot", "", origin=Origin(Made.REROLL))  # streams in
    store.update_node(chat, rerolled, "Gre")
    store.update_node(chat, rerolled, "Green.")
    store.update_node(chat, reply - 1, "Crimson.")
    message = store.messages(chat)[2]
    assert message.versions == ["Crimson.", "Blue.", "Green."] and message.content == "Green."

    store.set_active_leaf(chat, reply - 1)
    assert store.messages(chat)[2].content == "Crimson."
    with pytest.raises(StoreError, match=f"chat {chat} has no saved message 99; it may have"):
        store.set_active_leaf(chat, 99)
    with pytest.raises(StoreError, match="no saved message 7"):
        store.update_node(chat, 7, "x")
    with pytest.raises(StoreError, match="no saved message 999"):
        store.add_node(chat, 999, "bot", "x")
    with pytest.raises(StoreError, match="unknown role 'narrator'"):
        store.add_message(chat, "narrator", "Once upon a time")


def test_insert_and_delete_message(store: ChatStore) -> None:
    chat, (system, user, reply) = _fill(store)
    inserted = store.insert_message(chat, user, "system", "Answer in French.")
    assert [m.id for m in store.messages(chat)] == [system, inserted, user, reply]
    first = store.insert_message(chat, system, "user", "Before everything")
    appended = store.insert_message(chat, None, "assistant", "Appended")
    assert [m.id for m in store.messages(chat)] == [first, system, inserted, user, reply, appended]
    assert store.messages(chat)[-1].role == "bot"

    store.delete_message(chat, inserted)
    store.delete_message(chat, first)
    assert [m.content for m in store.messages(chat)] == [
        "You are terse.",
        "Name a colour.",
        "Blue.",
        "Appended",
    ]
    with pytest.raises(StoreError, match=f"no saved message {inserted}"):
        store.delete_message(chat, inserted)
    other = store.create_chat()
    with pytest.raises(StoreError, match=f"chat {other} has no saved message {user}"):
        store.insert_message(other, user, "user", "x")

    store.clear_messages(chat)
    assert [m.role for m in store.messages(chat)] == ["system"]
    store.clear_messages(chat, keep_system=False)
    assert store.messages(chat) == []


def test_reopened_file_holds_everything(store_path: Path) -> None:
    with ChatStore(store_path) as store:
        chat, (_, _, reply) = _fill(store)
        store.set_tokens(chat, reply, [5, 6, 7])
        store.rename_chat(chat, "Colours")
        store.save_state(chat, "fingerprint", [1, 2, 3], b"\x00state\xff")
        expected = (store.chats(), store.messages(chat), store.chat_settings(chat))
    with ChatStore(store_path) as reopened:
        assert (reopened.chats(), reopened.messages(chat), reopened.chat_settings(chat)) == expected
        assert reopened.messages(chat)[2].tokens == [5, 6, 7]
        assert reopened.messages(chat)[2].versions == ["Red.", "Blue."]
        assert reopened.load_state(chat, "fingerprint") == ([1, 2, 3], b"\x00state\xff")


def test_each_write_is_committed_at_once(store_path: Path) -> None:
    """A process killed without closing the store keeps every message it added."""
    script = (
        "import os, signal\n"
        "from ezchat.storage.store import ChatStore\n"
        f"store = ChatStore({str(store_path)!r})\n"
        "chat = store.create_chat()\n"
        "store.add_message(chat, 'user', 'Will this survive?')\n"
        "reply = store.add_message(chat, 'bot', 'Partial rep')\n"
        "store.update_node(chat, reply, 'Partial reply, flushed')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert done.returncode == -9, done.stderr
    with ChatStore(store_path) as store:
        chat = store.last_chat()
        assert chat.title == "Will this survive?"
        assert [m.content for m in store.messages(chat.id)] == [
            "Will this survive?",
            "Partial reply, flushed",
        ]


def test_writes_from_several_threads(store: ChatStore) -> None:
    chat = store.create_chat()

    def write(worker: int) -> None:
        for n in range(20):
            store.add_message(chat, "user", f"{worker}:{n}")

    workers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    contents = [m.content for m in store.messages(chat)]
    assert sorted(contents) == sorted(f"{w}:{n}" for w in range(4) for n in range(20))
    for w in range(4):  # each worker's messages stay in the order it wrote them
        mine = [c for c in contents if c.startswith(f"{w}:")]
        assert mine == [f"{w}:{n}" for n in range(20)]


def test_closed_store_says_so(store_path: Path) -> None:
    store = ChatStore(store_path)
    store.close()
    with pytest.raises(StoreError, match="is closed; open a new ChatStore"):
        store.chats()


# --- schema and bad files ------------------------------------------------------------------------


def test_v1_file_is_migrated_to_the_current_schema(store_path: Path) -> None:
    assert SCHEMA_VERSION >= 2  # v1 files go through every later migration
    conn = sqlite3.connect(store_path)
    conn.executescript(MIGRATIONS[0])
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER NOT NULL);"
        "INSERT INTO schema_version VALUES (1);"
        "INSERT INTO chats (id, title, created, updated) VALUES (7, 'Old chat', 1.0e9, 1.0e9);"
        "INSERT INTO messages (id, chat_id, position, role, current) VALUES (1, 7, 0, 'user', 0);"
        "INSERT INTO versions (message_id, idx, content) VALUES (1, 0, 'from version one');"
    )
    conn.commit()
    conn.close()
    with ChatStore(store_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        [message] = store.messages(7)
        assert (message.content, message.tokens) == ("from version one", None)
        store.set_tokens(7, message.id, [42, 43])  # token ids are kept since v2
        assert store.messages(7)[0].tokens == [42, 43]
        assert store.chat(7).title == "Old chat" and store.chat(7).created.year == 2001


def test_newer_schema_is_refused(store_path: Path) -> None:
    with ChatStore(store_path) as store:
        store.create_chat("Future")
        store._connection().execute(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError) as caught:
        ChatStore(store_path)
    message = str(caught.value)
    assert str(store_path) in message and "newer than this ezchat" in message
    assert "upgrade ezchat, or move the file aside" in message and "\n" not in message


def test_corrupt_file_is_refused_with_the_fix(store_path: Path) -> None:
    store_path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError) as caught:
        ChatStore(store_path)
    message = str(caught.value)
    assert message.startswith(f"{store_path} is not a readable ezchat chat store")
    assert "move it aside (e.g. rename it to chats.sqlite3.bad)" in message
    assert "\n" not in message
    assert store_path.read_bytes().startswith(b"this is not a database")  # left untouched


def test_truncated_store_is_refused_with_the_fix(store_path: Path) -> None:
    with ChatStore(store_path) as store:
        for _ in range(10):
            chat = store.create_chat()
            for n in range(20):
                store.add_message(chat, "user", f"message {n} " * 50)
    data = store_path.read_bytes()
    store_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError) as caught, ChatStore(store_path) as store:
        for summary in store.chats():
            store.messages(summary.id)
    assert str(store_path) in str(caught.value) and "move it aside" in str(caught.value)


def test_other_sqlite_file_is_refused(store_path: Path) -> None:
    conn = sqlite3.connect(store_path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not ezchat's saved chats .*tables recipes"):
        ChatStore(store_path)


def test_unwritable_folder_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder for saved chats"):
        ChatStore(blocker / "sub" / "chats.sqlite3")


# --- export and import ---------------------------------------------------------------------------


def test_export_markdown(store: ChatStore) -> None:
    chat, _ = _fill(store)
    text = store.export_markdown(chat)
    assert text.startswith("# Name a colour.\n")
    assert "- model: `smol.gguf`" in text and "- format: `chatml`" in text
    assert "## System\n\nYou are terse.\n" in text
    assert "## User\n\nName a colour.\n" in text
    assert "## Bot (version 2 of 2)\n\nBlue.\n" in text
    assert "Red." not in text


def test_export_json_round_trip(store: ChatStore) -> None:
    chat, _ = _fill(store)
    store.update_chat(chat, system_prompt="You are terse.")
    exported = store.export_json(chat)
    assert exported["nodes"][3] == {
        "id": 4,
        "parent": 2,
        "role": "bot",
        "content": "Blue.",
        "origin": "reroll",
    }
    assert exported["settings"]["sampler"] == "GreedyDecoding"

    copy = store.import_json(json.loads(json.dumps(exported)))
    assert copy != chat

    def shape(chat_id: int) -> list[tuple[str, list[str], int]]:
        return [(m.role, m.versions, m.current) for m in store.messages(chat_id)]

    assert shape(copy) == shape(chat)
    again = store.export_json(copy)
    for key in ("title", "settings", "nodes", "active"):
        assert again[key] == exported[key]
    assert store.chat(copy).created.timestamp() == pytest.approx(
        store.chat(chat).created.timestamp(), abs=1e-3
    )
    from_text = store.import_json(json.dumps(exported))
    assert store.export_markdown(from_text) == store.export_markdown(chat)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ("{not json", "the text is not JSON"),
        ([1, 2], "the data must be a JSON object"),
        ({"kind": "recipe"}, "'kind' is 'recipe'"),
        ({"version": 99}, "'version' is 99; this ezchat reads up to 2"),
        ({"settings": {"colour": "red"}}, "settings.colour is unknown"),
        ({"messages": [{"role": "narrator", "versions": ["x"]}]}, "message 1: unknown role"),
        ({"messages": [{"role": "user", "versions": []}]}, 'message 1: "versions" must be'),
        ({"messages": [{"role": "bot", "versions": ["a"], "current": 3}]}, '"current" must be'),
    ],
)
def test_import_names_what_is_wrong(store: ChatStore, data: object, complaint: str) -> None:
    with pytest.raises(StoreError, match=complaint):
        store.import_json(data)
    assert store.chats() == []  # nothing half-imported


def test_import_refuses_text_that_is_not_utf8(store: ChatStore) -> None:
    """A lone surrogate (a JSON escape) would make SQLite raise; the validator chat files use
    names the message and version instead."""
    data = {"messages": [{"role": "user", "versions": ["fine", "half \ud800"], "current": 0}]}
    with pytest.raises(ez.InvalidTextError, match="chat import: message 1 version 1: "):
        store.import_json(json.dumps(data))
    assert store.chats() == []


def test_chat_files_and_imports_share_one_message_validator(tmp_path: Path) -> None:
    """A chat file may hold an export's messages (every version); the current one is read."""
    from ezchat.storage.chatfile import read_chat_file

    path = tmp_path / "chat.json"
    exported = {"role": "bot", "versions": ["Red.", "Blue."], "current": 0}
    exported["reasonings"] = ["warm", "cold"]
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}, exported]}))
    assert read_chat_file(path).messages == [
        {"role": "user", "content": "Hi"},
        {"role": "bot", "content": "Red.", "reasoning": "warm"},
    ]
    path.write_text(json.dumps([{"role": "bot", "versions": ["a"], "current": 3}]))
    with pytest.raises(ez.UserFileError, match=f'{path}: message 1: "current" must be'):
        read_chat_file(path)


# --- tokens and samplers -------------------------------------------------------------------------


def test_token_lists_are_packed_four_bytes_each() -> None:
    tokens = [0, 1, 49151, 2**31 - 1, 12345]
    packed = pack_tokens(tokens)
    assert len(packed) == 4 * len(tokens)
    assert unpack_tokens(packed) == tokens


def test_sampler_setting_keeps_presets_by_name_and_edits_by_value(store: ChatStore) -> None:
    greedy = ez.samplers.load("GreedyDecoding")
    assert sampler_setting(greedy) == "GreedyDecoding"
    edited = ez.samplers.load("DefaultSampling").replace(temp=0.3, top_k=7)
    chat = store.create_chat(sampler=edited)
    saved = store.chat_settings(chat)["sampler"]
    assert json.loads(saved)["temp"] == 0.3
    assert sampler_from_setting(saved) == edited
    assert sampler_label(saved) == "custom (temp=0.3, top_k=7)"
    assert "- sampler: `custom (temp=0.3, top_k=7)`" in store.export_markdown(chat)
    assert sampler_label("GreedyDecoding") == "GreedyDecoding"
    assert sampler_from_setting("GreedyDecoding") == greedy
    assert sampler_from_setting("").name == "DefaultSampling"
    with pytest.raises(StoreError, match="saved sampler values are invalid"):
        sampler_from_setting('{"temp": 99}')


# --- a stored chat and a live Thread -------------------------------------------------------------


def test_thread_from_store_matches_the_stored_messages(
    store: ChatStore, model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    chat, _ = _fill(store)
    thread = thread_from_store(store, chat, model)
    assert thread.format.name == "chatml" and thread.sampler.name == "GreedyDecoding"
    stored = store.messages(chat)
    assert [(m["role"], m["content"]) for m in thread.messages] == [
        (m.role, m.content) for m in stored
    ]
    assert thread.messages[1].as_string() == "<|im_start|>user\nName a colour.<|im_end|>\n"
    thread.reset()  # back to the system prompt, not to the loaded conversation
    assert [m["content"] for m in thread.messages] == ["You are terse."]
    assert thread_from_store(store, chat, model, greedy).sampler is greedy


def test_a_reply_cut_off_inside_a_character_reopens_with_its_tokens(
    store: ChatStore, model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    """A reply that ran out of length midway through an emoji shows without that character's
    first bytes (the stream drops them), while its token ids hold them: reopened, the reply
    keeps those ids and their weights (heatmap, inspection) instead of losing them."""
    tokens = model.tokenize("Waves 🌊🌊", add_bos=False)
    # a cut inside the last emoji: its bytes span several tokens in SmolLM2's byte-level BPE
    cut = next(
        n
        for n in range(len(tokens) - 1, 0, -1)
        if model.shown_text(tokens[:n]) != model.detokenize(tokens[:n])
    )
    reply_tokens = tokens[:cut]
    shown = model.shown_text(reply_tokens)
    assert shown == "Waves 🌊" and model.detokenize(reply_tokens) != shown
    thread = ez.Thread(model, ez.formats.chatml, greedy)
    thread.add_message("user", "Draw the sea.")
    thread.add_message("bot", shown)
    reply = thread.tree.active
    reply.tokens = reply_tokens
    reply.token_info = [TokenInfo(token, 0.5, ((token, 0.5),)) for token in reply_tokens]
    chat = chat_from_thread(store, thread)

    reopened = thread_from_store(store, chat, model)
    node = reopened.tree.active
    assert node.content == shown and node.tokens == reply_tokens
    assert [info.id for info in node.token_info] == reply_tokens
    assert reopened.reply_tokens(reopened.messages[-1]) == reply_tokens  # the cache matches


def test_missing_format_and_preset_fall_back_with_notes(store: ChatStore, model: ez.Model) -> None:
    chat = store.create_chat(format="no-such-format", sampler="NoSuchPreset")
    notes: list[str] = []
    thread = thread_from_store(store, chat, model, notes=notes)
    assert thread.format.name == "auto" and thread.sampler.name == "DefaultSampling"
    assert len(notes) == 2
    assert "format 'no-such-format' is not available" in notes[0]
    assert "NoSuchPreset" in notes[1] and "using the DefaultSampling preset" in notes[1]


def test_chat_from_thread_saves_messages_and_reply_tokens(
    store: ChatStore, model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    thread = ez.Thread(model, "chatml", greedy)
    thread.set_system_prompt("You are a geography teacher.")
    thread.send("What is the capital of France?")
    chat = chat_from_thread(store, thread)
    settings = store.chat_settings(chat)
    assert settings["format"] == "chatml" and settings["sampler"] == sampler_setting(greedy)
    assert settings["system_prompt"] == "You are a geography teacher."
    assert store.chat(chat).title == "What is the capital of France?"
    stored = store.messages(chat)
    assert [m.role for m in stored] == ["system", "user", "bot"]
    assert stored[2].tokens == thread.last_result.tokens


def test_foreign_token_ids_are_ignored(store: ChatStore, model: ez.Model) -> None:
    chat, (_, _, reply) = _fill(store)
    store.set_tokens(chat, reply, [model.n_vocab + 5, 1])  # from a model with a bigger vocabulary
    thread = thread_from_store(store, chat, model)
    assert thread.reply_tokens(thread.messages[2]) == model.tokenize(
        "Blue.", add_bos=False, special=False
    )


def test_saved_state_resumes_without_evaluating_history(
    store_path: Path, model: ez.Model, model_path: Path, greedy: ez.SamplerSettings
) -> None:
    # An interface saves messages by text as they happen, then the state when it closes.
    with ChatStore(store_path) as store:
        thread = ez.Thread(model, "chatml", greedy)
        chat = chat_from_thread(store, thread, model="SmolLM2")
        for question in ("What is the capital of France?", "And of Italy?"):
            store.add_message(chat, "user", question)
            reply = thread.send(question)
            store.add_message(chat, "bot", reply)
        assert save_thread_state(store, chat, thread)
        saved_tokens = model.cached_tokens
        assert store.messages(chat)[-1].tokens == thread.reply_tokens(thread.messages[-1])
        # What the original thread says next: the resumed one must say the same.
        expected = thread.send("And of Spain?")

    model.reset_cache()
    with ChatStore(store_path) as store:
        resumed = thread_from_store(store, chat, model, greedy)
        assert restore_state(store, chat, resumed)
        assert model.cached_tokens == saved_tokens
        resumed.add_message("user", "And of Spain?")
        reply = resumed.start_reply()
        prompt = reply.result.prompt
        assert prompt.reused == len(saved_tokens)
        assert prompt.evaluated == prompt.prompt_tokens - len(saved_tokens) > 0
        assert reply.run() == expected

        # Without the saved state the whole history is evaluated again.
        model.reset_cache()
        again = thread_from_store(store, chat, model, greedy)
        again.add_message("user", "And of Spain?")
        assert again.start_reply().run() == expected
        assert again.last_result.prompt.reused == 0

        # A state saved for other settings is ignored, quietly.
        assert store.load_state(chat, "another model|1|2") is None
        with ez.Model(model_path, context_length=1024) as smaller:
            other = thread_from_store(store, chat, smaller, greedy)
            assert restore_state(store, chat, other) is False
            assert smaller.cached_tokens == []


def test_only_the_latest_states_are_kept_and_space_is_reclaimed(store_path: Path) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB
    with ChatStore(store_path, max_states=2) as store:
        chats = [store.create_chat(f"chat {n}") for n in range(3)]
        for chat in chats:
            store.save_state(chat, "fp", [1, 2], blob)
        assert [store.has_state(chat) for chat in chats] == [False, True, True]
        store.save_state(chats[1], "fp", [1, 2, 3], blob)  # saved again: now the newest
        store.save_state(chats[0], "fp", [1], blob)
        assert [store.has_state(chat) for chat in chats] == [True, True, False]
        size_with_states = store_path.stat().st_size
        store.delete_chat(chats[0])
        store.delete_state(chats[1])
        store._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert store_path.stat().st_size < size_with_states - 1.5 * len(blob)
        assert store.load_state(chats[1], "fp") is None
