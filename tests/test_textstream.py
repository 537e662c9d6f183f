"""Showable text from token bytes: whole UTF-8 characters, stop strings never shown in part."""

from __future__ import annotations

from ezchat.engine.textstream import TextAssembler


def test_split_emoji_appears_whole() -> None:
    emoji = "🦙".encode()
    assembler = TextAssembler()
    assert assembler.push(emoji[:2]) == ""
    assert assembler.push(emoji[2:] + b" hi") == "🦙 hi"


def test_stop_string_split_across_tokens_is_never_shown() -> None:
    assembler = TextAssembler(["###"])
    shown = [assembler.push(piece) for piece in (b"Answer #", b"#", b"# more")]
    assert shown == ["Answer ", "", ""]
    assert assembler.stopped_by == "###"
    assert assembler.text == "Answer "
    assert assembler.finish() == ""


def test_held_back_text_is_released_when_it_is_not_a_stop() -> None:
    assembler = TextAssembler(["###"])
    assert assembler.push(b"a #") == "a "
    assert assembler.push(b"b") == "#b"
    assert assembler.push(b" #") == " "
    assert assembler.finish() == "#"
    assert assembler.text == "a #b #"


def test_earliest_stop_wins() -> None:
    assembler = TextAssembler(["END", "\n\n"])
    assert assembler.push(b"one\n\ntwo END") == "one"
    assert assembler.stopped_by == "\n\n"


def test_character_cut_off_at_the_end_is_dropped() -> None:
    assembler = TextAssembler()
    assert assembler.push("ok 🦙".encode()[:-1]) == "ok "
    assert assembler.finish() == ""
    assert assembler.text == "ok "
