"""The reasoning parser: every marker style, with the reply cut into pieces at every place
(a marker split across tokens), and a block the generation prompt already opened."""

from __future__ import annotations

import itertools

import pytest

from ezchat.chat.reasoning import (
    STYLES,
    ReasoningSplitter,
    detect,
    join_reply,
    markers_from_settings,
    split_reply,
    thinking_variables,
)

REASONING = "\nThe user greets me. I greet back.\n"
ANSWER = "\n\nHello there!"


def reply_text(markers, opened: bool) -> str:
    head = "" if opened else markers.start
    return head + REASONING + markers.end + markers.answer_start + ANSWER


def pieces_cut_at(text: str, cuts: tuple[int, ...]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def streamed(markers, opened: bool, pieces: list[str]) -> tuple[str, str, str, str]:
    splitter = ReasoningSplitter(markers, opened)
    reasoning_parts, answer_parts = [], []
    for piece in pieces:
        reasoning, answer = splitter.push(piece)
        reasoning_parts.append(reasoning)
        answer_parts.append(answer)
    reasoning, answer = splitter.finish()
    reasoning_parts.append(reasoning)
    answer_parts.append(answer)
    return "".join(reasoning_parts), "".join(answer_parts), splitter.reasoning, splitter.answer


@pytest.mark.parametrize("opened", [False, True], ids=["reply-opens", "prompt-opened"])
@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_splits_the_same_at_every_token_boundary(style: str, opened: bool) -> None:
    markers = STYLES[style]
    text = reply_text(markers, opened)
    for cut in range(1, len(text)):
        got = streamed(markers, opened, pieces_cut_at(text, (cut,)))
        assert got == (REASONING, ANSWER, REASONING, ANSWER), (style, cut)
    # one character a token: every marker arrives split at every place at once
    assert streamed(markers, opened, list(text)) == (REASONING, ANSWER, REASONING, ANSWER)


@pytest.mark.parametrize("style", list(STYLES))
def test_two_cuts_inside_the_markers(style: str) -> None:
    markers = STYLES[style]
    text = reply_text(markers, False)
    end_at = text.index(markers.end)
    cuts = itertools.combinations(range(1, len(markers.start) + 1), 1)
    for (first,) in cuts:
        for second in range(end_at + 1, end_at + len(markers.end)):
            got = streamed(markers, False, pieces_cut_at(text, (first, second)))
            assert got[:2] == (REASONING, ANSWER), (style, first, second)


@pytest.mark.parametrize("style", list(STYLES))
def test_split_and_join_give_back_the_text(style: str) -> None:
    markers = STYLES[style]
    for opened in (False, True):
        text = reply_text(markers, opened)
        assert split_reply(text, markers, opened) == (REASONING, ANSWER)
        assert join_reply(REASONING, ANSWER, markers, opened) == text


def test_a_reply_without_reasoning_is_all_answer() -> None:
    markers = STYLES["think"]
    assert split_reply("Hello <think> is a tag", markers) == ("", "Hello <think> is a tag")
    # a text that only looks like the start of a marker is answer once the reply ends
    assert split_reply("<thi", markers) == ("", "<thi")
    assert split_reply("plain", None) == ("", "plain")


def test_a_reply_stopped_while_thinking_keeps_its_reasoning_and_stays_open() -> None:
    markers = STYLES["think"]
    splitter = ReasoningSplitter(markers)
    splitter.push("<think>Let me")
    splitter.push(" see </thi")
    assert splitter.thinking
    splitter.finish()
    assert (splitter.reasoning, splitter.answer, splitter.closed) == ("Let me see </thi", "", False)
    assert join_reply(splitter.reasoning, "", markers) == "<think>Let me see </thi"


def test_tokens_are_counted_while_thinking() -> None:
    splitter = ReasoningSplitter(STYLES["think"], opened=True)
    for piece in ["a", "b", "c", "</think>", "answer"]:
        splitter.push(piece)
    assert splitter.reasoning_tokens == 4  # the closing token still counted as thinking
    assert not splitter.thinking


QWEN3_LIKE = (
    "{%- for message in messages %}{%- if message.role == 'assistant' %}"
    "{%- set content = message.content.split('</think>')[-1] %}{% endif %}{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{%- endif %}{%- endif %}"
)
GPT_OSS_LIKE = (
    "{%- if reasoning_effort is defined %}Reasoning: {{ reasoning_effort }}{% endif %}"
    "<|start|>assistant<|channel|>analysis<|message|>{{ message.thinking }}<|end|>"
)


def test_markers_and_switches_detected_from_templates() -> None:
    assert detect(QWEN3_LIKE) == STYLES["think"]
    assert detect(GPT_OSS_LIKE) == STYLES["gpt-oss"]
    assert detect("{{ messages }}") is None
    assert thinking_variables(QWEN3_LIKE, False) == {"enable_thinking": False}
    assert thinking_variables(QWEN3_LIKE, None) == {}
    assert thinking_variables(GPT_OSS_LIKE, False) == {"reasoning_effort": "low"}


def test_markers_set_in_a_format_win_over_detection() -> None:
    custom = markers_from_settings("<reason>", "</reason>", QWEN3_LIKE)
    assert (custom.style, custom.start, custom.end) == ("custom", "<reason>", "</reason>")
    assert markers_from_settings("[THINK]", "[/THINK]", "") == STYLES["mistral"]
    assert markers_from_settings("", "", QWEN3_LIKE) == STYLES["think"]
