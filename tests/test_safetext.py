"""Text from outside ezchat never reaches the terminal as control characters.

Each escape family (OSC 0/2 titles with BEL and ST, CSI 2J, OSC 52, OSC 8, DCS, APC, PM, SOS,
the C1 controls, bare CR, backspace, bidi overrides) and Rich/Textual markup goes through each
surface: the app (a stored chat, a crafted GGUF's name and file name, preset files, the
chat list and the dialogs), the REPL (plain and on a pseudo-terminal), the CLI (generate,
candidates, info, formats, samplers, prompt, errors) and the library's printing calls. What
reaches the terminal is checked character by character, and the raw text is checked to stay in
the store, the Thread and ``--json``. SmolLM2 itself writes an ESC when it continues a reply
of OSC sequences; that case runs for real in the app, the REPL and ``generate``.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
from pathlib import Path

import pytest
from gates import holding
from gguf_craft import craft_gguf
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from tui_support import wait_idle, wait_loaded, wait_until
from typer.testing import CliRunner

import ezchat as ez
from ezchat.chat import samplers
from ezchat.cli.app import app as cli_app
from ezchat.repl import interact
from ezchat.safetext import VisibleStream, escaped, json_text, visible
from ezchat.session import ChatOptions
from ezchat.settings import paths
from ezchat.storage.store import ChatStore
from ezchat.tui import EzChatApp
from ezchat.tui.candidates import visible_token

# family: (raw text, how it must be shown). Each shown form is written out by hand: ESC is ␛,
# BEL ␇, CR ␍, BS ␈, DEL ␡; C1 and bidi controls are �. " ok" keeps a backslash from ending a
# line (Markdown reads that as a line break).
FAMILIES = {
    "OSC 0 title, BEL": ("\x1b]0;INJECTED\x07", "␛]0;INJECTED␇"),
    "OSC 2 title, ST": ("\x1b]2;INJECTED\x1b\\ ok", "␛]2;INJECTED␛\\ ok"),
    "CSI 2J clear screen": ("\x1b[2J\x1b[H", "␛[2J␛[H"),
    "OSC 52 clipboard": ("\x1b]52;c;ZXZpbA==\x07", "␛]52;c;ZXZpbA==␇"),
    "OSC 8 hyperlink": (
        "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07",
        "␛]8;;http://evil.example/␇click␛]8;;␇",
    ),
    "DCS": ("\x1bP1$r0m\x1b\\ ok", "␛P1$r0m␛\\ ok"),
    "APC": ("\x1b_Ga=T\x1b\\ ok", "␛_Ga=T␛\\ ok"),
    "PM and SOS": ("\x1b^pm\x1b\\ \x1bXsos\x1b\\ ok", "␛^pm␛\\ ␛Xsos␛\\ ok"),
    "C1 CSI, OSC and ST": ("\x9b2J \x9d0;INJECTED\x9c", "�2J �0;INJECTED�"),
    "bare CR": ("DANGER\rsafe", "DANGER␍safe"),
    "backspaces": ("abc\x08\x08\x08XYZ", "abc␈␈␈XYZ"),
    "bidi overrides": ("access\u202e\u2066 level\u2069\u2066", "access�� level��"),
    "DEL, NUL, VT, FF": ("a\x7fb\x00c\x0bd\x0ce", "a␡b␀c␋d␌e"),
    "markup": (
        "[red]x[/red] [@click=app.quit]quit[/] [/b]",
        "[red]x[/red] [@click=app.quit]quit[/] [/b]",
    ),
}
RAW = [raw for raw, _ in FAMILIES.values()]
HOSTILE_TEXT = "\n\n".join(RAW)  # one paragraph per family
HOSTILE_LINE = " ".join(RAW)
# What a terminal obeys instead of printing (newline and tab excepted, and CR before LF).
OBEYED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")
# Replies of OSC sequences, which SmolLM2 continues greedily with another ESC.
OSC_REPLY = "\x1b]0;title\x07" * 5


def assert_nothing_obeyed(text: str, where: str) -> None:
    found = OBEYED.search(text)
    assert found is None, (
        f"{where}: {found.group()!r} reaches the terminal: "
        f"{text[max(0, found.start() - 80) : found.start() + 40]!r}"
    )


def assert_all_shown(text: str, where: str, families: list[str] | None = None) -> None:
    for name in families or list(FAMILIES):
        assert FAMILIES[name][1] in text, f"{where}: {name} is not shown as {FAMILIES[name][1]!r}"


# --- the rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_is_shown_character_for_character(name: str) -> None:
    raw, shown = FAMILIES[name]
    assert visible(raw) == shown
    assert len(visible(raw)) == len(raw)  # one for one: offsets and cursors stay put
    assert_nothing_obeyed(visible(raw), name)


def test_ordinary_text_is_unchanged() -> None:
    for text in [
        "",
        "plain",
        "two\nlines\tand a tab",
        "windows\r\nline\r\n",
        "héllo 日本 🙂",
        "[b]",
    ]:
        assert visible(text) is text or visible(text) == text


def test_a_stream_holds_back_a_cr_until_it_knows_what_follows() -> None:
    stream = VisibleStream()
    pieces = ["DANGER\r", "safe", " end\r", "\nnext\r", ""]
    shown = "".join(stream.push(piece) for piece in pieces) + stream.finish()
    assert shown == "DANGER␍safe end\r\nnext␍"
    assert stream.finish() == ""
    assert visible("".join(pieces)) == shown


def test_escaped_writes_the_exact_characters() -> None:
    assert escaped("\x1b]0;T\x07") == "\\x1b]0;T\\x07"
    assert escaped("\x9b\u202e\n\t\r\\") == "\\x9b\\u202e\\n\\t\\r\\\\"
    assert escaped(" the") == " the"
    assert_nothing_obeyed(escaped(HOSTILE_LINE), "escaped")
    assert visible_token("\x1b") == '"\\x1b"'


def test_json_text_is_safe_to_print_and_reads_back_raw() -> None:
    data = {"text": HOSTILE_TEXT, HOSTILE_LINE: [HOSTILE_LINE, "\u2028"]}
    text = json_text(data)
    assert_nothing_obeyed(text, "json_text")
    assert json.loads(text) == data
    assert "日本" in json_text("日本")  # not ASCII-escaped


# --- a GGUF file with hostile metadata ------------------------------------------------------------

EVIL_NAME = "Evil\x1b]0;INJECTED\x07Model\x9b2J"
EVIL_NAME_SHOWN = "Evil␛]0;INJECTED␇Model�2J"
EVIL_FILE = "evil\x1b]2;FILE\x07.gguf"


@pytest.fixture(scope="module")
def evil_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model, renamed: ``general.name`` and the file name hold escapes, and an
    extra key holds every family."""
    folder = tmp_path_factory.mktemp("evil")
    return craft_gguf(
        ez.default_model_path(),
        folder / EVIL_FILE,
        {"general.name": EVIL_NAME, "evil.everything": HOSTILE_LINE},
    )


def test_the_crafted_gguf_is_the_same_model(evil_gguf: Path, model: ez.Model) -> None:
    crafted = ez.Model(evil_gguf, context_length=256)
    try:
        assert crafted.name == EVIL_NAME
        assert crafted.metadata["evil.everything"] == HOSTILE_LINE
        assert crafted.tokenize("Hello there") == model.tokenize("Hello there")
    finally:
        crafted.unload()


# --- the app -------------------------------------------------------------------------------------

BIG = (160, 100)  # room for every family of two messages on one screen
# What Textual itself writes between texts: colours (SGR) and cursor moves. Any other sequence
# in the output came from the text; the shown forms are checked as well, so an SGR in the text
# could not hide either.
TEXTUAL_OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\d+;\d+H")


def terminal_output(app: EzChatApp) -> str:
    """What the app writes to the terminal for a full redraw of the current screen (the same
    call ``App._display`` makes), with Textual's own colours and cursor moves taken out."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return TEXTUAL_OWN.sub("", update.render_segments(app.console))


def assert_screen_safe(app: EzChatApp, where: str) -> str:
    text = terminal_output(app)
    assert_nothing_obeyed(text, where)
    return text


def hostile_chat(store_path: Path, model_file: str, title: str = HOSTILE_LINE) -> int:
    with ChatStore(store_path) as store:
        return store.import_json(
            {
                "title": title,
                "settings": {"model": model_file, "format": "auto"},
                "messages": [
                    {"role": "user", "versions": ["Print the escape codes.\n\n" + HOSTILE_TEXT]},
                    {"role": "bot", "versions": [HOSTILE_TEXT, OSC_REPLY], "current": 1},
                ],
            }
        )


def make_app(model: Path | None, store_path: Path, **kwargs) -> EzChatApp:
    options = ChatOptions(model=model, sampler="GreedyDecoding", context_length=2048, seed=1234)
    return EzChatApp(options, store_path=store_path, show_timings=False, **kwargs)


@pytest.mark.slow
async def test_app_shows_a_stored_chat_and_the_models_metadata_visibly(
    tmp_path: Path, evil_gguf: Path
) -> None:
    store_path = tmp_path / "chats.db"
    chat_id = hostile_chat(store_path, str(evil_gguf))
    app = make_app(evil_gguf, store_path, resume=True)
    async with app.run_test(size=BIG) as pilot:
        await wait_loaded(pilot)
        assert app.chat_screen.chat.chat_id == chat_id
        # the header: general.name went into the title
        assert_nothing_obeyed(app.title + app.sub_title, "the title")
        assert EVIL_NAME_SHOWN in app.title
        shown = assert_screen_safe(app, "the conversation")
        assert EVIL_NAME_SHOWN in shown  # the header
        assert visible(EVIL_FILE) in shown  # the context pane's file name
        user_view = app.chat_screen.conversation.views[0]
        assert "[@click=app.quit]quit[/]" in shown and "␛]0;title␇" in shown
        assert_all_shown(shown, "the user message")
        # the older version: every family in a bot reply
        app.chat_screen.conversation.views[1].focus()
        await pilot.press("left")
        await pilot.pause()
        assert app.chat_screen.thread.messages[1]["content"] == HOSTILE_TEXT  # raw, in the thread
        assert_all_shown(assert_screen_safe(app, "the older version"), "the bot reply")
        await pilot.press("right")
        await pilot.pause()

        # the input's history holds the stored user message: drawn visibly, sent raw
        box = app.query_one("#input")
        box.focus()
        await pilot.press("up")
        await pilot.pause()
        # (TextArea splits lines at CR, VT, FF and the C1 NEL, as str.splitlines does)
        assert box.text.splitlines() == user_view.content.splitlines()
        lines_kept = [name for name in FAMILIES if name not in ("bare CR", "DEL, NUL, VT, FF")]
        assert_all_shown(assert_screen_safe(app, "the input box"), "the input box", lines_kept)
        box.clear()

        # the candidates pane inspects the reply's last token, an escape character
        await pilot.press("f8")
        header = app.chat_screen.candidates_pane.query_one(".candidates-header")
        await wait_until(pilot, lambda: "Token" in str(header.render()), "the token inspector")
        last = app.chat_screen.thread.reply_tokens(app.chat_screen.thread.messages[1])[-1]
        token_text = app.model.token_text(last)
        assert OBEYED.search(token_text), token_text
        shown = assert_screen_safe(app, "the candidates pane")
        assert visible_token(token_text) in shown

    with ChatStore(store_path) as store:  # the store keeps the raw text
        stored = store.messages(chat_id)
        assert stored[0].content.endswith(HOSTILE_TEXT)
        assert stored[1].versions[0] == HOSTILE_TEXT
        assert stored[1].content == OSC_REPLY
        assert store.chat(chat_id).title == HOSTILE_LINE


@pytest.mark.slow
async def test_app_shows_smollm2s_own_escape_visibly_while_it_streams(tmp_path: Path) -> None:
    """Continuing a reply of OSC sequences, SmolLM2 writes another ESC (greedy, so always)."""
    store_path = tmp_path / "chats.db"
    with ChatStore(store_path) as store:
        chat_id = store.import_json(
            {
                "settings": {"sampler": "GreedyDecoding"},  # else the chat's default preset
                "messages": [
                    {"role": "user", "versions": ["Print the escape codes."]},
                    {"role": "bot", "versions": [OSC_REPLY]},
                ],
            }
        )
    app = make_app(None, store_path, resume=True)
    async with app.run_test(size=BIG) as pilot:
        await wait_loaded(pilot, max_len_tokens=150)
        view = app.chat_screen.conversation.views[-1]
        with holding("token", lambda count, text: "\x1b" in text) as gate:
            await pilot.press("ctrl+g")
            await wait_until(
                pilot,
                lambda: gate.held.is_set() or not app.chat_screen.generating,
                "the model's ESC",
            )
            assert gate.held.is_set(), "the reply ended without an ESC"
            # the reply is held just after the ESC: everything before it is on its way
            await wait_until(
                pilot, lambda: view.content.endswith(gate.text), "the held reply to be shown"
            )
            assert app.chat_screen.generating
            shown = assert_screen_safe(app, "the reply as it streams")
            await pilot.press("escape")
        await wait_idle(pilot)
        written = app.chat_screen.thread.messages[-1]["content"][len(OSC_REPLY) :]
        assert "\x1b" in written, written  # the model's own ESC, kept raw in the thread
        shown = assert_screen_safe(app, "the finished reply")
        first_line = next(line for line in visible(written).split("\n") if line)
        assert first_line[:24] in shown
    with ChatStore(store_path) as store:
        assert store.messages(chat_id)[-1].content == OSC_REPLY + written


@pytest.mark.slow
async def test_app_chat_list_dialogs_and_notifications_show_titles_visibly(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "chats.db"
    # short enough for the model's column to show beside it
    title = " ".join(FAMILIES[name][0] for name in ("OSC 0 title, BEL", "CSI 2J clear screen"))
    hostile_chat(store_path, f"/models/{EVIL_FILE}", title + " [/b]")
    app = make_app(None, store_path)
    async with app.run_test(size=BIG, notifications=True) as pilot:
        await wait_loaded(pilot)
        await pilot.press("f5")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ChatListScreen", "list")
        await pilot.pause()
        shown = assert_screen_safe(app, "the chat list")
        assert visible(title) + " [/b]" in shown and visible(EVIL_FILE) in shown

        await pilot.press("d")  # "Delete the chat “<title>”?"
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", "confirm")
        shown = assert_screen_safe(app, "the delete question")
        assert_all_shown(shown, "the delete question", ["OSC 0 title, BEL", "CSI 2J clear screen"])
        await pilot.press("n")
        await pilot.pause()

        await pilot.press("r")  # the title in an edit box
        await wait_until(pilot, lambda: type(app.screen).__name__ == "TextEditScreen", "rename")
        shown = assert_screen_safe(app, "the rename dialog")
        assert FAMILIES["OSC 0 title, BEL"][1] in shown
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()

        # a notification quoting outside text, with markup that would raise if it were read
        app.notify(HOSTILE_LINE, title="\x1b]0;T\x07[/nope]")
        await wait_until(pilot, lambda: app.screen.query("Toast"), "the notification")
        await pilot.pause()
        shown = assert_screen_safe(app, "a notification")
        assert "␛]0;T␇[/nope]" in shown and FAMILIES["CSI 2J clear screen"][1] in shown


@pytest.mark.slow
async def test_app_shows_preset_names_descriptions_and_errors_visibly(tmp_path: Path) -> None:
    """A user's preset file whose name and description hold escapes and markup: the F3
    picker, the header, the F2 form and the sampler lines of the context pane."""
    folder = paths.user_dir("samplers")
    folder.mkdir(parents=True)
    name = "Evil\x1b]0;P\x07[b]"
    (folder / f"{name}.toml").write_text(
        'description = "\\u001b]52;c;ZXZpbA==\\u0007 [/red]"\ntemp = 0.0\n', encoding="utf-8"
    )
    (folder / "Broken\x9b2J.toml").write_text("temp = [\n", encoding="utf-8")
    app = make_app(None, tmp_path / "chats.db")
    async with app.run_test(size=BIG) as pilot:
        await wait_loaded(pilot)
        await pilot.press("f3")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", "picker")
        shown = assert_screen_safe(app, "the preset picker")
        assert "Evil␛]0;P␇[b]" in shown and "␛]52;c;ZXZpbA==␇ [/red]" in shown
        assert "Broken�2J" in shown  # the broken file's name, in its error
        picker = app.screen.query_one("OptionList")
        picker.highlighted = [o.id for o in picker.options].index(name)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat_screen.thread.sampler.name == name, "the preset")
        assert "Evil␛]0;P␇[b]" in app.sub_title
        assert "Evil␛]0;P␇[b]" in assert_screen_safe(app, "the header and context pane")
        await pilot.press("f2")
        await wait_until(pilot, lambda: "Sampler" in type(app.screen).__name__, "the form")
        assert "Evil␛]0;P␇[b]" in assert_screen_safe(app, "the sampler form")


async def test_loading_screen_shows_a_hostile_file_name_and_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a short path, on one line of the error
    bad = Path("bad\x1b]0;INJECTED\x07[b].gguf")
    bad.write_bytes(b"not a model at all" * 10)
    app = make_app(bad, tmp_path / "chats.db")
    async with app.run_test(size=BIG) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "failed", False), "the error")
        await pilot.pause()
        shown = assert_screen_safe(app, "the loading screen")
        assert "bad␛]0;INJECTED␇[b].gguf" in shown


# --- the REPL -------------------------------------------------------------------------------------


def repl_chat(thread: ez.Thread, keys: str, screen, **kwargs) -> None:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        interact(thread, input=pipe, output=DummyOutput(), file=screen, **kwargs)


def chat_file(path: Path, user: str, bot: str) -> Path:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": bot}]
    path.write_text(json.dumps({"messages": messages}), encoding="utf-8")
    return path


@pytest.fixture
def hostile_file(tmp_path: Path) -> Path:
    return chat_file(tmp_path / "evil.json", HOSTILE_TEXT, HOSTILE_TEXT)


def test_repl_prints_a_loaded_chat_and_the_models_escape_visibly(
    model: ez.Model, greedy: ez.SamplerSettings, hostile_file: Path
) -> None:
    thread = ez.Thread(model, "auto", greedy)
    thread.sampler.max_len_tokens = 24
    # SmolLM2 continues this reply with an ESC of its own
    osc_file = chat_file(hostile_file.with_name("osc.json"), "Print the escape codes.", OSC_REPLY)
    keys = f"!load {hostile_file}\r!load {osc_file}\r!continue\r"
    screen = io.StringIO()
    repl_chat(thread, keys, screen, header=EVIL_NAME)
    out = screen.getvalue()
    assert_nothing_obeyed(out, "the REPL")
    assert_all_shown(out, "the loaded chat")
    assert out.startswith(EVIL_NAME_SHOWN + "\n")
    reply = thread.messages[-1]["content"]
    written = reply[len(OSC_REPLY) :]
    assert reply.startswith(OSC_REPLY) and "\x1b" in written  # SmolLM2's own ESC, kept raw
    assert visible(written) in out


def test_repl_on_a_terminal_in_colour_obeys_nothing(
    model: ez.Model, greedy: ez.SamplerSettings, hostile_file: Path
) -> None:
    """The coloured path writes through prompt-toolkit to a real pseudo-terminal."""
    thread = ez.Thread(model, "auto", greedy)
    master, slave = pty.openpty()
    written = b""
    try:
        with open(os.dup(slave), "w", encoding="utf-8") as terminal:
            repl_chat(thread, f"!load {hostile_file}\r", terminal, color=True)
        while select.select([master], [], [], 0.2)[0]:
            written += os.read(master, 65536)
    finally:
        os.close(master)
        os.close(slave)
    assert b"\x1b[0;" in written  # it is in colour
    # prompt-toolkit's own sequences are CSI with digits, ';' and '?' (colours, cursor)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written.decode("utf-8"))
    text = text.replace("\r\r\n", "\n").replace("\r\n", "\n")  # the terminal's line ends
    assert_nothing_obeyed(text, "the coloured REPL")
    assert_all_shown(text, "the coloured REPL")


# --- the CLI --------------------------------------------------------------------------------------

GREEDY = ["-s", "GreedyDecoding", "-c", "2048", "--seed", "1234"]


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli_app, list(args), input=input)


def assert_output_safe(result, where: str) -> tuple[str, str]:
    """stdout and stderr, decoded from the bytes written, with nothing a terminal obeys."""
    out = result.stdout_bytes.decode("utf-8")
    err = result.stderr_bytes.decode("utf-8")
    assert_nothing_obeyed(out, f"{where} (stdout)")
    assert_nothing_obeyed(err, f"{where} (stderr)")
    return out, err


@pytest.mark.slow
def test_cli_generate_shows_the_models_escape_and_json_keeps_it(model: ez.Model) -> None:
    raw = model.generate(
        OSC_REPLY, sampler=samplers.load("GreedyDecoding").replace(max_len_tokens=12)
    )
    assert "\x1b" in raw  # SmolLM2 writes an ESC of its own
    result = run("generate", OSC_REPLY, "-n", "12", *GREEDY)
    assert result.exit_code == 0, result.output
    out, _ = assert_output_safe(result, "generate")
    assert out == visible(raw) + "\n"
    result = run("generate", OSC_REPLY, "-n", "12", "--json", *GREEDY)
    out, _ = assert_output_safe(result, "generate --json")
    assert json.loads(out)["text"] == raw


@pytest.mark.slow
def test_cli_generate_of_every_family_and_candidates(model: ez.Model) -> None:
    """A completion that continues a prompt of every family (whatever the model writes) and
    the candidate tokens after it."""
    result = run("generate", HOSTILE_TEXT, "-n", "16", *GREEDY)
    assert result.exit_code == 0, result.output
    assert_output_safe(result, "generate")
    result = run("candidates", OSC_REPLY, "-k", "20")
    out, _ = assert_output_safe(result, "candidates")
    result = run("candidates", OSC_REPLY, "-k", "20", "--json")
    out, _ = assert_output_safe(result, "candidates --json")
    texts = [row["text"] for row in json.loads(out)]
    assert any(OBEYED.search(text) for text in texts), texts  # an escape among them, raw


def test_cli_info_shows_hostile_metadata_visibly_and_json_keeps_it(evil_gguf: Path) -> None:
    result = run("info", "-m", str(evil_gguf))
    assert result.exit_code == 0, result.output
    out, _ = assert_output_safe(result, "info")
    assert EVIL_NAME_SHOWN in out and visible(EVIL_FILE) in out
    assert FAMILIES["OSC 0 title, BEL"][1] in out  # evil.everything, cut to 70 characters
    result = run("info", "-m", str(evil_gguf), "--json")
    out, _ = assert_output_safe(result, "info --json")
    data = json.loads(out)
    assert data["facts"]["name"] == EVIL_NAME
    assert data["metadata"]["evil.everything"] == HOSTILE_LINE
    assert data["facts"]["file"] == str(evil_gguf)


def test_cli_chat_header_shows_the_models_name_visibly(evil_gguf: Path) -> None:
    result = run("chat", "-m", str(evil_gguf), *GREEDY, input="!quit\n")
    assert result.exit_code == 0, result.output
    out, _ = assert_output_safe(result, "chat")
    assert out.startswith(EVIL_NAME_SHOWN + " (")


def test_cli_lists_and_shows_user_files_visibly(tmp_path: Path) -> None:
    folder = paths.user_dir("formats")
    folder.mkdir(parents=True)
    (folder / "evil\x1b]0;F\x07.toml").write_text(
        'description = "\\u001b]8;;http://x/\\u0007 [b]"\nuser_prefix = "U\\u001b[2J: "\n',
        encoding="utf-8",
    )
    # TOML refuses a raw ESC, even in a comment: this one is broken, and its error names it
    (folder / "raw\x9b2J.toml").write_text("# \x1b]0;COMMENT\x07\x1b[2J\n", encoding="utf-8")
    result = run("formats")
    assert result.exit_code == 0, result.output
    out, _ = assert_output_safe(result, "formats")
    assert "evil␛]0;F␇" in out and "␛]8;;http://x/␇ [b]" in out
    assert "raw�2J" in out and "(broken: " in out
    out, _ = assert_output_safe(run("formats", "--json"), "formats --json")
    assert any(row["name"] == "evil\x1b]0;F\x07" for row in json.loads(out))
    result = run("formats", "show", "raw\x9b2J")
    assert result.exit_code == 0, result.output
    out, _ = assert_output_safe(result, "formats show")
    assert out == "# ␛]0;COMMENT␇␛[2J\n"

    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps([{"role": "user", "content": HOSTILE_TEXT}]))
    result = run("prompt", "-f", "evil\x1b]0;F\x07", str(messages))
    assert result.exit_code == 0, result.output
    out, _ = assert_output_safe(result, "prompt")
    assert "U␛[2J: " in out
    assert_all_shown(out, "prompt")


def test_cli_errors_quote_hostile_paths_visibly(tmp_path: Path) -> None:
    result = run("info", "-m", str(tmp_path / "gone\x1b]0;INJECTED\x07\x9b2J.gguf"))
    assert result.exit_code == 2
    _, err = assert_output_safe(result, "an error")
    assert "gone␛]0;INJECTED␇�2J.gguf" in err and len(err.splitlines()) == 1
    batch_input = tmp_path / "in\x1b]0;B\x07.jsonl"
    batch_input.write_text('{"prompt": 5}\n')
    result = run("batch", str(batch_input), "-o", str(tmp_path / "out.jsonl"), "-q")
    _, err = assert_output_safe(result, "batch")
    assert "in␛]0;B␇.jsonl:1" in err


def test_cli_load_bar_shows_the_file_name_as_plain_text(evil_gguf: Path, tmp_path: Path) -> None:
    """The bar's label was a Rich markup and format string: a ``{`` or ``[/`` in a file name
    raised, and an ESC went to the terminal."""
    from rich.console import Console

    from ezchat.cli.loadbar import load_model_showing_progress

    link = tmp_path / "load{x}[b]\x1b]0;BAR\x07.gguf"
    link.symlink_to(evil_gguf)
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=200)
    loaded = load_model_showing_progress(
        ChatOptions(model=link, context_length=256), console, after_seconds=0.0
    )
    loaded.unload()
    drawn = terminal.getvalue()
    assert "Loading load{x}[b]␛]0;BAR␇.gguf" in drawn
    assert "\x1b]0;BAR" not in drawn and "\x07" not in drawn


# --- the library's printing calls -----------------------------------------------------------------


def test_stream_print_shows_visibly_and_returns_the_raw_text(model: ez.Model) -> None:
    out = io.StringIO()
    sampler = samplers.load("GreedyDecoding").replace(max_len_tokens=12)
    text = model.stream_print(OSC_REPLY, sampler=sampler, file=out)
    assert "\x1b" in text
    assert out.getvalue() == visible(text) + "\n"


def test_response_summary_shows_prompts_and_responses_visibly(model: ez.Model) -> None:
    from ezchat.runners import BasicModelRunner

    sampler = samplers.load("GreedyDecoding").replace(max_len_tokens=8)
    runner = BasicModelRunner(model, sampler, cache=False)
    runner.call(OSC_REPLY)
    out = io.StringIO()
    runner.last_responses.print_response_summary(file=out)
    assert_nothing_obeyed(out.getvalue(), "print_response_summary")
    assert "␛]0;title␇" in out.getvalue()
