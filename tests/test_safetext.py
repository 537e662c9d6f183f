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

import json
import re

import pytest

from ezchat.safetext import VisibleStream, escaped, json_text, visible

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


def test_json_text_is_safe_to_print_and_reads_back_raw() -> None:
    data = {"text": HOSTILE_TEXT, HOSTILE_LINE: [HOSTILE_LINE, "\u2028"]}
    text = json_text(data)
    assert_nothing_obeyed(text, "json_text")
    assert json.loads(text) == data
    assert "日本" in json_text("日本")  # not ASCII-escaped
