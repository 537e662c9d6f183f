"""A reply's reasoning, told apart from its answer by the markers the model's template uses.

Reasoning models write their thinking between markers before the answer: ``<think>…</think>``
(Qwen3, DeepSeek-R1, most others), gpt-oss's analysis channel
(``<|channel|>analysis<|message|>…<|end|>`` then ``<|start|>assistant<|channel|>final<|message|>``),
Mistral's ``[THINK]…[/THINK]``, Command's ``<|START_THINKING|>…<|END_THINKING|>`` and a few
more: the styles llama.cpp's chat parsers know (``common/parsers/*.cpp``).

The split is lossless: ``reasoning`` is the exact text between the markers and ``answer`` the
exact text after them, so ``join_reply`` gives back the very text the model generated (and the
Thread its tokens). A template may open the block itself in the generation prompt; the reply
then starts inside it (``opened=True``). Markers can arrive split across tokens: text that may
be the start of a marker is held back until the next piece decides it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ReasoningMarkers:
    """``start`` opens the reasoning, ``end`` closes it; ``answer_start``, when the model writes
    it right after ``end``, opens the answer and belongs to neither part's text."""

    style: str
    start: str
    end: str
    answer_start: str = ""


# The styles of llama.cpp's chat parsers, the most specific first (detection takes the first
# whose markers a template mentions).
STYLES: dict[str, ReasoningMarkers] = {
    markers.style: markers
    for markers in (
        ReasoningMarkers(
            "gpt-oss",
            "<|channel|>analysis<|message|>",
            "<|end|>",
            "<|start|>assistant<|channel|>final<|message|>",
        ),
        ReasoningMarkers("command", "<|START_THINKING|>", "<|END_THINKING|>"),
        ReasoningMarkers("mistral", "[THINK]", "[/THINK]"),
        ReasoningMarkers("seed", "<seed:think>", "</seed:think>"),
        ReasoningMarkers("minimax", "<mm:think>", "</mm:think>"),
        ReasoningMarkers("gemma4", "<|channel>thought", "<channel|>"),
        ReasoningMarkers("think", "<think>", "</think>"),
    )
}

# Template variables that switch thinking on or off, as the templates that take them name them.
_THINKING_VARIABLES = ("enable_thinking", "thinking", "enable_reasoning")


def detect(template: str) -> ReasoningMarkers | None:
    """The reasoning markers a chat template (or a format's text) writes, or None."""
    for markers in STYLES.values():
        if markers.start in template and markers.end in template:
            return markers
    return None


def markers_from_settings(start: str, end: str, template: str) -> ReasoningMarkers | None:
    """A format's markers: its own ``reasoning_start``/``reasoning_end`` when set, else the
    ones its template (or prefixes) mention."""
    if start and end:
        known = detect(start + end)
        if known is not None and (known.start, known.end) == (start, end):
            return known
        return ReasoningMarkers("custom", start, end)
    return detect(template)


def thinking_variables(template: str, enabled: bool | None) -> dict[str, object]:
    """What a template that takes a thinking switch gets for ``enabled`` (None: its default).
    gpt-oss cannot stop reasoning; its lowest effort is the nearest thing to off."""
    if enabled is None:
        return {}
    found: dict[str, object] = {
        name: enabled for name in _THINKING_VARIABLES if _mentions(template, name)
    }
    if _mentions(template, "reasoning_effort"):
        found["reasoning_effort"] = "medium" if enabled else "low"
    return found


def has_thinking_switch(template: str) -> bool:
    return bool(thinking_variables(template, True))


# A chat's thinking switch as saved and typed: on, off, or the template's default.
_THINKING_WORDS = {"on": True, "off": False, "default": None}


def thinking_setting(enabled: bool | None) -> str:
    """The switch as a chat saves it ('' for the template's default)."""
    return "" if enabled is None else thinking_label(enabled)


def thinking_label(enabled: bool | None) -> str:
    return next(word for word, value in _THINKING_WORDS.items() if value is enabled)


def parse_thinking(text: str) -> bool | None:
    """``on``, ``off``, ``default`` (or '') as the switch; ValueError names the choices."""
    word = text.strip().lower()
    if not word:
        return None
    if word not in _THINKING_WORDS:
        raise ValueError(f"thinking is {text!r}; use on, off or default")
    return _THINKING_WORDS[word]


def _mentions(template: str, variable: str) -> bool:
    """Whether a template reads ``variable`` itself (not ``message.variable``)."""
    return re.search(rf"(?<![\w.]){variable}\b", template) is not None


def _held(text: str, marker: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``marker``."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


class ReasoningSplitter:
    """Splits a reply arriving in pieces. ``push`` returns the reasoning and the answer text
    that the piece made certain; ``finish`` returns what was held back at the end.

    States: before the reply says anything (it may open the block), inside the block, right
    after it (the answer's own start marker may come), and in the answer.
    """

    def __init__(self, markers: ReasoningMarkers | None, opened: bool = False) -> None:
        self.markers = markers
        self.opened = opened
        self._state = "answer" if markers is None else ("reasoning" if opened else "start")
        self._pending = ""
        self.reasoning = ""
        self.answer = ""
        self.closed = False
        self.reasoning_tokens = 0

    @property
    def thinking(self) -> bool:
        """True while the reply is inside its reasoning block."""
        return self._state == "reasoning"

    def push(self, piece: str) -> tuple[str, str]:
        if self._state == "reasoning":
            self.reasoning_tokens += 1
        if self._state == "answer":
            self.answer += piece
            return "", piece
        self._pending += piece
        return self._advance(final=False)

    def finish(self) -> tuple[str, str]:
        return self._advance(final=True)

    def _advance(self, final: bool) -> tuple[str, str]:
        markers = self.markers
        assert markers is not None or self._state == "answer"
        reasoning_out, answer_out = "", ""
        while self._pending:
            text = self._pending
            if self._state == "start":
                assert markers is not None
                if text.startswith(markers.start):
                    self._pending = text[len(markers.start) :]
                    self._state = "reasoning"
                    continue
                if markers.start.startswith(text) and not final:
                    break
                self._state = "answer"
            elif self._state == "reasoning":
                assert markers is not None
                cut = text.find(markers.end)
                if cut >= 0:
                    reasoning_out += text[:cut]
                    self._pending = text[cut + len(markers.end) :]
                    self._state = "after"
                    self.closed = True
                    continue
                keep = 0 if final else _held(text, markers.end)
                reasoning_out += text[: len(text) - keep]
                self._pending = text[len(text) - keep :]
                break
            elif self._state == "after":
                assert markers is not None
                opener = markers.answer_start
                if opener and text.startswith(opener):
                    self._pending = text[len(opener) :]
                elif opener and opener.startswith(text) and not final:
                    break
                self._state = "answer"
            else:
                answer_out += text
                self._pending = ""
        if final and self._state == "after":
            self._state = "answer"
        self.reasoning += reasoning_out
        self.answer += answer_out
        return reasoning_out, answer_out


def split_reply(
    text: str, markers: ReasoningMarkers | None, opened: bool = False
) -> tuple[str, str]:
    """``(reasoning, answer)`` of a whole reply."""
    splitter = ReasoningSplitter(markers, opened)
    splitter.push(text)
    splitter.finish()
    return splitter.reasoning, splitter.answer


def join_reply(
    reasoning: str, answer: str, markers: ReasoningMarkers | None, opened: bool = False
) -> str:
    """The text the model wrote, from its parts: ``split_reply``'s inverse. A reasoning with no
    answer is taken to be unfinished, so its block stays open (a continue goes on thinking)."""
    if markers is None or (not reasoning and not opened):
        return answer
    head = "" if opened else markers.start
    if not answer:
        return head + reasoning
    return head + reasoning + markers.end + markers.answer_start + answer


def shown(text: str) -> str:
    """A part as people read it: without the blank lines around it."""
    return text.strip()


def message_reasoning(message: Mapping[str, object]) -> str:
    value = message.get("reasoning", "")
    return value if isinstance(value, str) else ""


def format_markers(fmt: Any) -> ReasoningMarkers | None:
    """The markers a Format uses: set in its file, else read off its template, else those whose
    start its reply prefix writes (a prefix format that opens the block itself)."""
    template = fmt.template if fmt.template is not None else ""
    found = markers_from_settings(fmt.reasoning_start, fmt.reasoning_end, template)
    if found is None and fmt.template is None:
        bot_prefix = fmt["bot_prefix"]
        found = next((m for m in STYLES.values() if m.start in bot_prefix), None)
    return found


def prompt_opens(fmt: Any, markers: ReasoningMarkers | None) -> bool:
    """Whether the format's generation prompt already opens the reasoning block, so the reply
    starts inside it."""
    if markers is None:
        return False
    try:
        prompt = fmt.render([{"role": "user", "content": "x"}], add_generation_prompt=True)
    except Exception:  # a template that cannot render this says nothing about reasoning
        return False
    return prompt.rstrip().endswith(markers.start)
