"""The heatmap: replies coloured token by token by the probability the model gave each token,
readable in the light and dark themes, toggled on F10 for every reply; and the token inspection
reads the stored weighing of any reply instead of computing it."""

from __future__ import annotations

import pytest
from textual.color import Color
from textual.theme import BUILTIN_THEMES
from tui_support import SIZE, make_app, send, wait_loaded, wait_until

import ezchat as ez
from ezchat.chat.tree import TokenInfo
from ezchat.storage.tokeninfo import pack_token_info, unpack_token_info
from ezchat.tui.heat_view import HeatLegend, HeatText
from ezchat.tui.heatmap import (
    HEAT_STEPS,
    UNKNOWN_STYLE,
    heat_content,
    heat_legend,
    heat_step,
    token_pieces,
)


def test_five_steps_from_low_to_high() -> None:
    assert len(HEAT_STEPS) == 5
    assert [heat_step(p) for p in (0.0, 0.19, 0.2, 0.5, 0.79, 0.8, 1.0)] == [0, 0, 1, 2, 3, 4, 4]
    legend = heat_legend().plain
    for step in HEAT_STEPS:
        assert step.label in legend


def _contrast(a: Color, b: Color) -> float:
    def luminance(color: Color) -> float:
        def channel(value: int) -> float:
            c = value / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
def test_every_step_is_readable_in_the_theme(theme: str) -> None:
    """$text on each step's background passes WCAG AA for body text (4.5:1), and the steps
    are told apart from the page and from each other. $text is "auto 87%": the better of
    black and white for the background it is on, at 87%, as Textual resolves it."""
    variables = BUILTIN_THEMES[theme].to_color_system().generate()
    assert variables["text"] == "auto 87%"
    page = Color.parse(variables["background"])
    backgrounds = []
    for step in HEAT_STEPS:
        name = step.style.split(" on $")[1]
        tint = Color.parse(variables[name])
        background = page.blend(tint.with_alpha(1), tint.a)
        backgrounds.append(background)
        text_on = background.blend(background.get_contrast_text(1.0), 0.87)
        assert _contrast(text_on, background) >= 4.5, (theme, name)
    assert len({bg.hex for bg in backgrounds}) == len(HEAT_STEPS)


def test_pieces_are_visible_and_keep_split_characters(model: ez.Model) -> None:
    text = "café ☕ \x1b[2J done"
    tokens = model.tokenize(text, add_bos=False, special=False)
    pieces = token_pieces(tokens, model.token_bytes)
    joined = "".join(pieces)
    assert "\x1b" not in joined and "␛[2J" in joined
    assert "café ☕" in joined  # no replacement characters from split bytes
    content = heat_content(pieces, [None] * len(pieces))
    assert content.plain == joined
    assert all(span.style == UNKNOWN_STYLE for span in content.spans)


def test_unknown_token_weighings_survive_storage() -> None:
    """A reply continued from typed text has tokens with no weighing: stored as unknown."""
    infos = [None, TokenInfo(5, 0.25, ((5, 0.25), (7, 0.125))), None]
    assert unpack_token_info(pack_token_info(infos)) == infos


@pytest.mark.slow
async def test_heatmap_toggle_colours_every_reply_from_its_tokens(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=12)
        await send(pilot, "What is the capital of France?")
        await send(pilot, "And of Italy?")
        screen = app.chat_screen
        thread = screen.thread
        legend = screen.query_one(HeatLegend)
        assert not legend.display

        await pilot.press("f10")
        await pilot.pause()
        assert legend.display
        heats = list(screen.query(HeatText))
        bots = [i for i, m in enumerate(thread.messages) if m["role"] == "bot"]
        assert len(heats) == len(bots) == 2
        for heat, index in zip(heats, bots, strict=True):
            node = thread.node_at(index)
            assert node.token_info is not None and len(node.token_info) == len(node.tokens)
            content = heat.visual
            expected = token_pieces(node.tokens, thread.model.token_bytes)
            assert content.plain == "".join(expected)
            styles = [span.style for span in content.spans]
            shown = [p for p in expected if p]
            infos = [i for p, i in zip(expected, node.token_info, strict=True) if p]
            assert styles == [HEAT_STEPS[heat_step(i.probability)].style for i in infos]
            assert len(shown) == len(styles)
            assert heat.parent.has_class("-heat")

        # a new reply while it is on is coloured too
        await send(pilot, "And of Spain?")
        assert len(screen.query(HeatText)) == 3

        await pilot.press("f10")
        await pilot.pause()
        assert not legend.display and not screen.query(HeatText)
        assert not any(view.has_class("-heat") for view in screen.conversation.views)


@pytest.mark.slow
async def test_inspecting_an_earlier_reply_reads_its_stored_weighing(tmp_path):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, max_len_tokens=10)
        await send(pilot, "Name a colour.")
        await send(pilot, "Name an animal.")
        screen = app.chat_screen
        thread = screen.thread
        pane = screen.candidates_pane
        node = thread.node_at(1)
        assert node.token_info is not None
        # the model's cache now holds the second exchange; the first reply's candidates come
        # from its node, so the cache is not touched
        cached = thread.model.cached_tokens
        screen.conversation.views[1].focus()
        await pilot.press("t")
        position = len(node.tokens) - 1
        await wait_until(pilot, lambda: screen._inspecting == (1, position), "inspection")
        await wait_until(pilot, lambda: pane.chosen == node.tokens[position], "candidates")
        info = node.token_info[position]
        assert [(c.id, float(c.probability)) for c in pane.candidates] == list(info.top)
        await pilot.press("left")
        info = node.token_info[position - 1]
        await wait_until(pilot, lambda: pane.chosen == info.id, "the previous token")
        assert [c.id for c in pane.candidates] == [token for token, _ in info.top]
        assert thread.model.cached_tokens == cached
