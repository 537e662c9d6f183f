"""Input ezchat did not write, of the wrong shape or size: a server's stream events and
log-probabilities, imported and stored chats (dates, nesting, damaged blobs and pages, rows
edited by hand), settings files that are links, FIFOs or hold control characters, limits past
what a clock or a count holds, and two batch runs on one output. Each ends in one line naming
the thing and the fix, keeps what the user had (the partial reply, the rest of the chats), and
never leaves an interface stuck."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ROOT, one_error_line, run_ezchat
from gates import ProcessHold
from hostile_servers import SCRIPTED, hostile_server
from test_repl import ENTER
from test_repl import chat as repl_chat
from test_tui_dataloss import damage_nodes_table
from tui_support import SIZE, make_app, send, wait_loaded, wait_until

import ezchat as ez
from ezchat.backends import RemoteError
from ezchat.errors import StoreError, UserFileError
from ezchat.session import ChatOptions
from ezchat.settings import paths
from ezchat.settings.config import Config, config_path, load_config, save_config
from ezchat.storage.chats import chat_from_thread, thread_from_store
from ezchat.storage.store import ChatStore
from ezchat.tui import EzChatApp

COMPLETIONS = ("/completions",)


def _event(choice: dict | None = None, **fields) -> str:
    """A completion event: the token "b", finished, with ``choice``'s and ``fields``' changes."""
    return json.dumps(
        {
            "choices": [{"text": "b", "index": 0, "finish_reason": "stop", **(choice or {})}],
            **fields,
        }
    )


def _token(token_id) -> dict:
    """Log-probabilities in llama.cpp's form, naming the token's id."""
    entry = {"token": "b", "id": token_id, "logprob": -0.1, "top_logprobs": []}
    return {"logprobs": {"content": [entry]}}


# Each streams after one good token ("a"); each names what was wrong.
MALFORMED = {
    "text-number": (_event({"text": 12345}), "text is not a string"),
    "text-object": (_event({"text": {"a": 1}}), "text is not a string"),
    "usage-number": (_event(usage=5), "usage is not an object"),
    "timings-infinite": (
        _event(timings={"prompt_n": 1}).replace('"prompt_n": 1', '"prompt_n": 1e400'),
        "timings.prompt_n is out of range",
    ),
    "usage-text": (_event(usage={"prompt_tokens": "many"}), "usage.prompt_tokens is not a number"),
    "id-infinite": (
        _event(_token(1)).replace('"id": 1', '"id": 1e400'),
        "token id (inf)",
    ),
    "id-past-int32": (_event(_token(10**30)), "token id (1000000000000000"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_stream_event_is_one_line_and_keeps_the_partial_reply(
    case: str, server_url: str, greedy, tmp_path: Path
) -> None:
    """The Thread raises RemoteError naming the field; the reply holds the text before the
    bad event, and the chat saves (no token id past int32 reaches the store)."""
    event, says = MALFORMED[case]
    with hostile_server(SCRIPTED, server_url, COMPLETIONS, events=(event,)) as server:
        remote = ez.RemoteModel(server.url)
        thread = ez.Thread(remote, ez.formats.chatml, greedy)
        with pytest.raises(RemoteError) as failure:
            thread.send("Say hi.")
        remote.unload()
    message = str(failure.value)
    assert "\n" not in message and says in message, message
    assert "partial reply is kept" in message
    assert [(m["role"], m["content"]) for m in thread.messages] == [
        ("user", "Say hi."),
        ("bot", "a"),
    ]
    assert thread.last_result.stop_reason == "error"
    with ChatStore(tmp_path / "chats.db") as store:
        chat_id = chat_from_thread(store, thread)
        assert [m.content for m in store.messages(chat_id)] == ["Say hi.", "a"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["text-number", "usage-number", "id-past-int32"])
def test_cli_generate_says_a_malformed_event_in_one_line(
    case: str, server_url: str, isolated_home: Path
) -> None:
    event, says = MALFORMED[case]
    with hostile_server(SCRIPTED, server_url, COMPLETIONS, events=(event,)) as server:
        args = ["generate", "Say hi.", "--server", server.url, "-f", "chatml", "-n", "8"]
        result = run_ezchat(*args, timeout=60)
    one_error_line(result, "cannot read", says)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["text-object", "timings-infinite", "id-past-int32"])
async def test_the_app_ends_a_reply_at_a_malformed_event_and_saves_it(
    case: str, server_url: str, tmp_path: Path
) -> None:
    """The app says the server's mistake, is ready for the next message (not "writing" for
    good), and the chats file holds the partial reply."""
    event, says = MALFORMED[case]
    store_path = tmp_path / "chats.db"
    with hostile_server(SCRIPTED, server_url, COMPLETIONS, events=(event,)) as server:
        options = ChatOptions(sampler="GreedyDecoding", server=server.url)
        app = EzChatApp(options, store_path=store_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.ready, "the server to connect")
            await send(pilot, "Say hi.")
            assert not app.chat_screen.generating
            said = [n.message for n in app._notifications if says in n.message]
            assert len(said) == 1, [n.message for n in app._notifications]
            assert app.chat_screen.thread.messages[-1]["content"] == "a"
    with ChatStore(store_path) as store:
        (summary,) = store.chats()
        assert [(m.role, m.content) for m in store.messages(summary.id)][-2:] == [
            ("user", "Say hi."),
            ("bot", "a"),
        ]


# The token "b" whose candidates' log-probabilities are not numbers a probability comes from.
ODD_LOGPROBS = _event(
    {
        "logprobs": {
            "content": [
                {
                    "token": "b",
                    "logprob": float("nan"),
                    "top_logprobs": [
                        {"token": "b", "logprob": float("nan")},
                        {"token": "c", "logprob": float("inf")},
                        {"token": "d", "logprob": 50.0},
                        {"token": "e", "logprob": -0.5},
                    ],
                }
            ]
        }
    }
)


@pytest.mark.slow
def test_nan_and_infinite_logprobs_are_no_probability(server_url: str, greedy) -> None:
    """A server's NaN, infinite or positive log-probability is probability 0, never NaN or
    more than 1; a real one keeps its value."""
    with hostile_server(SCRIPTED, server_url, COMPLETIONS, events=(ODD_LOGPROBS,)) as server:
        remote = ez.RemoteModel(server.url)
        events = list(remote.start("Say hi.", sampler=greedy, candidates=4))
        remote.unload()
    (odd,) = [event for event in events if event.text == "b"]
    probabilities = {c.text: float(c.probability) for c in odd.candidates}
    assert probabilities["b"] == probabilities["c"] == probabilities["d"] == 0.0
    assert probabilities["e"] == pytest.approx(0.6065, abs=1e-4)


@pytest.mark.slow
async def test_the_candidates_pane_draws_no_nan_for_a_servers_odd_logprobs(
    server_url: str, tmp_path: Path
) -> None:
    with hostile_server(SCRIPTED, server_url, COMPLETIONS, events=(ODD_LOGPROBS,)) as server:
        options = ChatOptions(sampler="GreedyDecoding", server=server.url)
        app = EzChatApp(options, store_path=tmp_path / "chats.db")
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.ready, "the server to connect")
            await send(pilot, "Say hi.")
            pane = app.chat_screen.candidates_pane
            await wait_until(
                pilot, lambda: len(pane.candidates) == 4, "the last token's candidates"
            )
            rows = pane.query_one(".candidates-list").options
            drawn = [str(row.prompt) for row in rows]
    assert not any("nan" in row or "inf" in row for row in drawn), drawn
    assert sum("0.0%" in row for row in drawn) == 3, drawn


# --- stored chats -------------------------------------------------------------------------------


def _export(created: str) -> str:
    nodes = [{"id": 1, "parent": 0, "role": "user", "content": "hello"}]
    data = {"kind": "ezchat-chat", "version": 2, "created": created, "nodes": nodes, "active": 1}
    return json.dumps(data)


@pytest.mark.parametrize("created", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_import_refuses_a_date_no_clock_shows(created: str, tmp_path: Path) -> None:
    with ChatStore(tmp_path / "chats.db") as store:
        with pytest.raises(StoreError) as failure:
            store.import_json(_export(created))
        message = str(failure.value)
        assert "\n" not in message and "'created'" in message and "1970" in message, message
        assert store.chats() == []


def _chat_with_impossible_dates(store_path: Path) -> int:
    """A chat whose row holds dates past year 9999 and before year 1, as an ezchat that did
    not check imported dates wrote them, beside a healthy older chat."""
    with ChatStore(store_path) as store:
        store.import_json(_export("2024-05-01T12:00:00+00:00"))
        chat_id = store.import_json(_export("2024-05-02T12:00:00+00:00"))
    with sqlite3.connect(store_path) as conn:
        conn.execute(
            "UPDATE chats SET created = ?, updated = ? WHERE id = ?",
            (253402351199.0, 1e300, chat_id),
        )
    conn.close()
    return chat_id


def test_a_stored_chat_with_an_impossible_date_does_not_stop_the_store(tmp_path: Path) -> None:
    store_path = tmp_path / "chats.db"
    chat_id = _chat_with_impossible_dates(store_path)
    with ChatStore(store_path) as store:
        assert len(store.chats()) == 2
        assert store.last_chat().id == chat_id
        assert store.chat(chat_id).created.year == 1970
        exported = store.export_json(chat_id)
        assert store.import_json(exported) != chat_id  # and the export imports again
        assert "hello" in store.export_markdown(chat_id)


@pytest.mark.slow  # the real app, as the TUI tests run it
async def test_the_app_resumes_and_lists_a_chat_with_an_impossible_date(tmp_path: Path) -> None:
    store_path = tmp_path / "chats.db"
    chat_id = _chat_with_impossible_dates(store_path)
    app = make_app(store_path, resume=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        assert app.chat_screen.chat.chat_id == chat_id
        assert app.chat_screen.thread.messages[-1]["content"] == "hello"
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ChatListScreen", "list")
        assert app.screen.query_one("DataTable").row_count == 2


# --- deeply nested JSON -------------------------------------------------------------------------

DEEP = "[" * 100_000


def test_importing_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    with ChatStore(tmp_path / "chats.db") as store:
        with pytest.raises(StoreError) as failure:
            store.import_json(DEEP)
        assert store.chats() == []
    message = str(failure.value)
    assert "\n" not in message and "nests too deeply" in message, message


def test_a_stored_sampler_of_deeply_nested_json_opens_with_the_default(
    model: ez.Model, tmp_path: Path
) -> None:
    """A chat imported with such a sampler value exports, and opens on the default preset
    with a note saying why."""
    data = json.loads(_export("2024-05-01T12:00:00+00:00"))
    data["settings"] = {"sampler": '{"temp": ' + DEEP}
    notes: list[str] = []
    with ChatStore(tmp_path / "chats.db") as store:
        chat_id = store.import_json(data)
        assert "hello" in store.export_markdown(chat_id)
        thread = thread_from_store(store, chat_id, model, notes=notes)
    assert thread.sampler.name == ez.samplers.load_default().name
    assert [m["content"] for m in thread.messages] == ["hello"]
    (note,) = notes
    assert "saved sampler values are invalid" in note and "\n" not in note


def test_repl_load_of_deeply_nested_json_keeps_the_chat(
    model: ez.Model, greedy, tmp_path: Path
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    thread = ez.Thread(model, "chatml", greedy)
    thread.add_message("user", "Keep me.")
    kept = tmp_path / "kept.json"
    out = repl_chat(thread, f"!load {deep}{ENTER}!save {kept}{ENTER}")
    said = [line for line in out.splitlines() if "nests too deeply" in line]
    assert len(said) == 1 and str(deep) in said[0], out
    assert "Traceback" not in out
    assert [m["content"] for m in thread.messages] == ["Keep me."]
    assert json.loads(kept.read_text())["messages"][-1]["content"] == "Keep me."


@pytest.mark.slow
def test_cli_prompt_of_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    one_error_line(run_ezchat("prompt", "-f", "chatml", str(deep)), str(deep), "nests too deeply")


# --- damaged rows and pages -----------------------------------------------------------------------


def _chat_with_damaged_token_ids(store_path: Path) -> int:
    """A saved chat of one exchange whose reply's token ids are 5 bytes, no whole token."""
    with ChatStore(store_path) as store:
        chat_id = store.create_chat("damaged")
        store.add_message(chat_id, "user", "What is the capital of France?")
        store.add_message(chat_id, "bot", "Paris.", tokens=[12, 34])
    with sqlite3.connect(store_path) as conn:
        conn.execute(
            "UPDATE nodes SET tokens = X'0102030405' WHERE chat_id = ? AND role = 'bot'",
            (chat_id,),
        )
    conn.close()
    return chat_id


def test_damaged_token_ids_are_a_note_and_the_text_is_kept(tmp_path: Path) -> None:
    store_path = tmp_path / "chats.db"
    chat_id = _chat_with_damaged_token_ids(store_path)
    notes: list[str] = []
    with ChatStore(store_path) as store:
        tree = store.load_tree(chat_id, notes)
    assert [(n.content, n.tokens) for n in tree.active_path] == [
        ("What is the capital of France?", None),
        ("Paris.", None),
    ]
    (note,) = notes
    assert "\n" not in note and note.startswith(f"chat {chat_id}: message 2:"), note
    assert "token ids are damaged" in note


@pytest.mark.slow  # the real app, as the TUI tests run it
async def test_the_app_resumes_a_chat_with_damaged_token_ids_and_goes_on(tmp_path: Path) -> None:
    store_path = tmp_path / "chats.db"
    chat_id = _chat_with_damaged_token_ids(store_path)
    app = make_app(store_path, resume=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        assert app.chat_screen.chat.chat_id == chat_id
        said = [n.message for n in app._notifications if "token ids are damaged" in n.message]
        assert said, [n.message for n in app._notifications]
        await send(pilot, "And of Italy?")
        assert [m["role"] for m in app.chat_screen.thread.messages][-4:] == [
            "user",
            "bot",
            "user",
            "bot",
        ]
        assert app.chat_screen.thread.messages[-1]["content"]


@pytest.mark.slow  # the real app, as the TUI tests run it
async def test_resume_with_a_damaged_page_says_so_and_opens_a_new_chat(tmp_path: Path) -> None:
    """The chats file's header is fine but the page --resume reads is garbage: one
    notification naming the file, and a new chat that works (said unsaved when it is not)."""
    store_path = tmp_path / "chats.db"
    damage_nodes_table(store_path)
    app = make_app(store_path, resume=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=6)
        said = [n.message for n in app._notifications if "last chat" in n.message]
        assert len(said) == 1, [n.message for n in app._notifications]
        assert "\n" not in said[0] and str(store_path) in said[0] and "malformed" in said[0]
        assert app.chat_screen.chat.chat_id is None
        await send(pilot, "Hello!")
        assert [m["role"] for m in app.chat_screen.thread.messages][-2:] == ["user", "bot"]


# --- the settings file --------------------------------------------------------------------------

CONTROL_TEXT = 'hi\x1b]0;X\x07\ttab\r\x7f\x00"\\q\nend'


def test_a_setting_with_control_characters_is_written_escaped_and_reads_back() -> None:
    path = save_config(Config(system_prompt=CONTROL_TEXT, keymap={"chat.send\x1b é": "ctrl+j"}))
    written = path.read_text(encoding="utf-8")
    assert not any(ch in written for ch in "\x1b\x07\r\x7f\x00"), written
    loaded = load_config()
    assert loaded.system_prompt == CONTROL_TEXT
    assert loaded.keymap == {"chat.send\x1b é": "ctrl+j"}


@pytest.mark.slow
def test_cli_config_set_with_control_characters_leaves_a_readable_file() -> None:
    result = run_ezchat("config", "set", "system_prompt", CONTROL_TEXT.replace("\x00", ""))
    assert result.returncode == 0, result.stderr
    shown = run_ezchat("config", "show")
    assert shown.returncode == 0, shown.stderr
    assert load_config().system_prompt == CONTROL_TEXT.replace("\x00", "")


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        ({"timeout": 1e300}, "timeout (--timeout, server_timeout) may be at most 604800 s"),
        ({"idle_timeout": 1e10}, "idle_timeout (--idle-timeout, server_idle_timeout) may be"),
        ({"max_read_mb": float("inf")}, "max_read (--max-read-mb, server_max_read_mb) must be"),
        ({"max_read_mb": 1e300}, "max_read (--max-read-mb, server_max_read_mb) may be at most"),
    ],
    ids=["timeout", "idle-timeout", "max-read-infinite", "max-read-huge"],
)
def test_a_limit_too_large_for_the_clock_or_a_count_is_one_line(limits: dict, says: str) -> None:
    with pytest.raises(ez.EzChatError) as failure:
        ez.RemoteModel("http://127.0.0.1:9", **limits)
    message = str(failure.value)
    assert "\n" not in message and says in message, message


@pytest.mark.slow
@pytest.mark.parametrize("flag", [("--timeout", "1e300"), ("--max-read-mb", "inf")])
def test_cli_refuses_a_limit_too_large_in_one_line(flag: tuple[str, str]) -> None:
    result = run_ezchat("generate", "hi", "--server", "http://127.0.0.1:9", *flag, timeout=60)
    one_error_line(result, flag[0])


@pytest.mark.slow
def test_config_set_refuses_a_limit_too_large_in_one_line() -> None:
    result = run_ezchat("config", "set", "server_timeout", "1e300", timeout=60)
    one_error_line(result, "server_timeout", "at most 604800 s")
    assert load_config().server_timeout is None  # nothing was written


# --- settings files that are not files ----------------------------------------------------------


def _odd_setting_files(kind: str) -> dict[str, str]:
    """In the user's ``kind`` folder: a link to nothing, a link to /dev/zero and a FIFO, each
    with what its one line says."""
    folder = paths.user_dir(kind)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Ghost.toml").symlink_to(folder / "gone.toml")
    (folder / "Zero.toml").symlink_to("/dev/zero")
    os.mkfifo(folder / "Pipe.toml")
    return {
        "Ghost": "a link to a file that does not exist",
        "Zero": "not a regular file",
        "Pipe": "not a regular file",
    }


def test_odd_preset_files_are_each_one_line_and_the_others_load() -> None:
    odd = _odd_setting_files("samplers")
    assert set(odd) <= set(ez.samplers.available())
    for name, says in odd.items():
        with pytest.raises(UserFileError) as failure:
            ez.samplers.description(name)
        message = str(failure.value)
        assert "\n" not in message and f"{name}.toml" in message and says in message, message
    assert ez.samplers.load("GreedyDecoding").temp == 0.0


def test_odd_format_files_are_each_one_line() -> None:
    odd = _odd_setting_files("formats")
    for name, says in odd.items():
        with pytest.raises(UserFileError, match=says):
            ez.formats.load(name)
    assert ez.formats.load("chatml").name == "chatml"


def test_a_config_file_that_is_a_fifo_is_one_line() -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    with pytest.raises(UserFileError, match="not a regular file"):
        load_config()


@pytest.mark.slow
def test_cli_lists_presets_beside_odd_files_and_refuses_to_show_one() -> None:
    odd = _odd_setting_files("samplers")
    listed = run_ezchat("samplers", timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "GreedyDecoding" in rows and "(broken:" not in rows["GreedyDecoding"]
    for name, says in odd.items():
        assert "(broken:" in rows[name] and says in rows[name], rows[name]
    one_error_line(run_ezchat("samplers", "show", "Pipe", timeout=60), "Pipe.toml")


@pytest.mark.slow  # the real app, as the TUI tests run it
async def test_the_app_reports_a_fifo_preset_and_goes_on(tmp_path: Path) -> None:
    _odd_setting_files("samplers")
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=4)
        await pilot.press("f3")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", "presets")
        choices = dict(app.screen.choices)
        assert all(choices[name].startswith("(broken:") for name in ("Ghost", "Zero", "Pipe"))
        app.screen.query_one("OptionList").highlighted = list(choices).index("Pipe")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: any("Pipe.toml" in n.message for n in app._notifications), "a note"
        )
        assert app.chat_screen.thread.sampler.name == "GreedyDecoding"
        await send(pilot, "Still here?")
        assert app.chat_screen.thread.messages[-1]["role"] == "bot"


# --- the Markdown export ------------------------------------------------------------------------


def test_a_title_or_setting_with_line_breaks_makes_no_section_in_markdown(tmp_path: Path) -> None:
    data = json.loads(_export("2024-05-01T12:00:00+00:00"))
    data["title"] = "Trip\n## Bot\nfake reply"
    data["settings"] = {"model": "m.gguf\n\n## User\nforged `x`", "format": "chatml"}
    with ChatStore(tmp_path / "chats.db") as store:
        markdown = store.export_markdown(store.import_json(data))
    lines = markdown.splitlines()
    assert lines[0] == "# Trip ## Bot fake reply"
    assert [line for line in lines if line.startswith("## ")] == ["## User"]  # the one message
    assert "- model: `` m.gguf ## User forged `x` ``" in lines


# --- batch runs -----------------------------------------------------------------------------------


def _prompts(path: Path, count: int) -> list[str]:
    ids = [f"p{number}" for number in range(count)]
    lines = [
        json.dumps({"id": i, "prompt": f"Name a number above {n}."}) for n, i in enumerate(ids)
    ]
    path.write_text("\n".join(lines) + "\n")
    return ids


@pytest.mark.slow
def test_a_second_batch_run_on_one_output_is_refused_in_one_line(
    tmp_path: Path, isolated_home: Path
) -> None:
    """The first run holds OUTPUT (held after its first response); a second run on it is
    refused in one line and writes nothing; the first then ends with each id once."""
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = _prompts(source, 4)
    args = [str(source), "-o", str(output), "--max-tokens", "4", "-p", "1", "-c", "512", "-q"]
    gate = ProcessHold(tmp_path / "gate", "response", 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EZCHAT_HOME": str(isolated_home), **gate.env}
    first = subprocess.Popen(
        [sys.executable, "-m", "ezchat", "batch", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gate.wait_held(first) == "response 1"
        written = output.read_text()
        second = run_ezchat("batch", *args, timeout=120)
        one_error_line(second, str(output), "another ezchat batch run")
        assert output.read_text() == written
    finally:
        gate.release(first)
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == ids


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before the command", "after the command"])
def test_batch_uses_the_server_named_before_or_after_the_command(
    where: str, server_url: str, tmp_path: Path
) -> None:
    """The server's every reply is "ab" (its scripted stream): the output holds it, so the
    prompts went to the server, not to the local model."""
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = _prompts(source, 2)
    with hostile_server(SCRIPTED, server_url, COMPLETIONS, events=(_event(),)) as server:
        named = ["--server", server.url]
        batch = ["batch", str(source), "-o", str(output), "--max-tokens", "4", "-q"]
        args = [*named, *batch] if where == "before the command" else [*batch, *named]
        result = run_ezchat(*args, timeout=300)
        assert server.misbehaved == 2
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == ids
    assert [row["response"] for row in rows] == ["ab", "ab"]


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("content", b"\x00\xff", "message 4 is damaged (its text is not text)"),
        ("role", 7, "message 4 has an unknown role '7'"),
    ],
)
def test_a_saved_row_whose_text_or_role_is_not_one_leaves_the_rest_open(
    column: str, value: object, says: str, tmp_path: Path
) -> None:
    """The message is left out with a note (and those under it); one whose time is text keeps
    its text. The chat opens with the rest."""
    store_path = tmp_path / "chats.db"
    with ChatStore(store_path) as store:
        chat_id = store.create_chat("hand-edited")
        for turn in range(3):
            store.add_message(chat_id, "user", f"question {turn}")
            store.add_message(chat_id, "bot", f"answer {turn}")
    with sqlite3.connect(store_path) as conn:
        conn.execute("UPDATE nodes SET created = 'soon' WHERE chat_id = ? AND id = 1", (chat_id,))
        conn.execute(
            f"UPDATE nodes SET {column} = ? WHERE chat_id = ? AND id = 4", (value, chat_id)
        )
    conn.close()
    notes: list[str] = []
    with ChatStore(store_path) as store:
        tree = store.load_tree(chat_id, notes)
        assert "question 0" in store.export_markdown(chat_id)
    assert [node.content for node in tree.active_path] == ["question 0", "answer 0", "question 1"]
    assert all("\n" not in note for note in notes), notes
    assert says in notes[0], notes
