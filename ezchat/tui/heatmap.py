"""The heatmap: a reply's text coloured token by token by the probability the model gave each
token as it wrote it (``Node.token_info``), in five steps from low to high, with a legend.

The colours are the theme's own ``*-muted`` backgrounds under ``$text``: Textual blends each of
them with the theme's background, so the text stays readable in the light and dark themes
alike (tests/test_heatmap.py checks the contrast in both). The text is model output, so every
token goes through ``safetext.visible``; a character split across tokens is shown with the
token that completes it.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence
from typing import NamedTuple

from textual.content import Content

from ..chat.tree import TokenInfo
from ..safetext import visible


class HeatStep(NamedTuple):
    below: float  # the probabilities under this (and at or over the step before) take it
    style: str
    label: str


# low -> high; one table, used by the colouring and the legend alike
HEAT_STEPS: tuple[HeatStep, ...] = (
    HeatStep(0.2, "$text on $error-muted", "<20%"),
    HeatStep(0.4, "$text on $warning-muted", "20-40%"),
    HeatStep(0.6, "$text on $secondary-muted", "40-60%"),
    HeatStep(0.8, "$text on $primary-muted", "60-80%"),
    HeatStep(float("inf"), "$text on $success-muted", "≥80%"),
)
UNKNOWN_STYLE = "$text-muted"  # a token whose probability is not known (typed, not generated)


def heat_step(probability: float) -> int:
    """The step (0: lowest) a probability falls in."""
    for index, step in enumerate(HEAT_STEPS):
        if probability < step.below:
            return index
    return len(HEAT_STEPS) - 1


def token_pieces(tokens: Sequence[int], piece_bytes: Callable[[int], bytes]) -> list[str]:
    """Each token's share of the text, showable: the bytes decoded as one stream, so a
    character split over tokens belongs to the token that completes it."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces = [decoder.decode(piece_bytes(token)) for token in tokens]
    if pieces:
        pieces[-1] += decoder.decode(b"", final=True)
    return [visible(piece) for piece in pieces]


def heat_content(pieces: Sequence[str], infos: Sequence[TokenInfo | None] | None) -> Content:
    """The pieces, each on the background of its probability's step."""
    parts: list[tuple[str, str] | str] = []
    for index, piece in enumerate(pieces):
        if not piece:
            continue
        info = infos[index] if infos is not None and index < len(infos) else None
        style = UNKNOWN_STYLE if info is None else HEAT_STEPS[heat_step(info.probability)].style
        parts.append((piece, style))
    return Content.assemble(*parts)


def reply_heat(
    tokens: Sequence[int] | None,
    infos: Sequence[TokenInfo | None] | None,
    piece_bytes: Callable[[int], bytes],
) -> Content | None:
    """A reply's heatmap, or None when its tokens are not known."""
    if not tokens:
        return None
    return heat_content(token_pieces(tokens, piece_bytes), infos)


def heat_legend() -> Content:
    """One line: the five steps with their colours, and the unknown style."""
    parts: list[tuple[str, str] | str] = ["Token probability: "]
    for step in HEAT_STEPS:
        parts += [(f" {step.label} ", step.style), " "]
    parts.append(("unknown", UNKNOWN_STYLE))
    return Content.assemble(*parts)


def piece_reader(model: object) -> Callable[[int], bytes]:
    """The model's token bytes (a local Model has them exactly; a server's model spells a
    token as text)."""
    exact = getattr(model, "token_bytes", None)
    if callable(exact):
        return exact
    token_text = model.token_text  # type: ignore[attr-defined]
    return lambda token: token_text(token).encode("utf-8")
