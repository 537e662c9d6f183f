"""The key bar is rebuilt only when the keys it shows change (a rebuild is a dozen widgets,
which a key typed at that moment waited for), and always shows what Textual's own Footer
would: the same keys, in the same order, dimmed the same way."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey
from tui_support import make_app, send, wait_loaded, wait_until

from ezchat.tui.footer import KeyFooter

# drives the app through Pilot on the real model: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow


def shown(footer: Footer) -> list[tuple[str, str, bool]]:
    return [(k.key, k.description, k.has_class("-disabled")) for k in footer.query(FooterKey)]


async def assert_as_textual_shows_it(pilot, footer: KeyFooter) -> None:
    """What ``footer`` shows equals what Textual's own Footer shows for the same bindings."""
    textual_footer = Footer()
    await footer.screen.mount(textual_footer)
    footer.screen.refresh_bindings()  # Textual's Footer composes its keys on this signal
    await wait_until(pilot, lambda: len(textual_footer.children) > 0, "Textual's footer")
    await pilot.pause()
    assert shown(footer) == shown(textual_footer)
    await textual_footer.remove()


async def test_focus_moving_within_the_chat_keeps_the_footer_and_a_message_shows_its_keys(
    tmp_path,
):
    app = make_app(tmp_path / "chats.db")
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await send(pilot, "Say hi.")
        await wait_until(pilot, lambda: not app.chat_screen.generating, "the reply")
        footer = app.chat_screen.query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        assert [k.description for k in keys][:3] == ["Stop", "Reroll", "Continue"]
        # the same bindings again (a refresh, the prompt focused again): nothing rebuilt
        app.chat_screen.refresh_bindings()
        app.query_one("#input").focus()
        await pilot.pause()
        await pilot.pause()
        assert list(footer.query(FooterKey)) == keys
        # a focused message adds its own keys: rebuilt, and showing them
        app.chat_screen.conversation.views[-1].focus()
        await wait_until(pilot, lambda: list(footer.query(FooterKey)) != keys, "message keys")
        assert "Edit" in [k.description for k in footer.query(FooterKey)]
        await assert_as_textual_shows_it(pilot, footer)
        # and back: the prompt's keys, as before
        app.query_one("#input").focus()
        await wait_until(
            pilot,
            lambda: "Edit" not in [k.description for k in footer.query(FooterKey)],
            "prompt keys",
        )
        assert [k.key for k in footer.query(FooterKey)] == [k.key for k in keys]


class DimmingApp(App):
    """Two keys, one of which can be made unavailable (dimmed in the footer)."""

    BINDINGS = [("a", "act", "Act"), ("b", "other", "Other")]

    def __init__(self) -> None:
        super().__init__()
        self.act_available = True
        self.acted = 0

    def compose(self):
        yield Static("dimming")
        yield KeyFooter()

    def check_action(self, action: str, parameters) -> bool | None:
        return None if action == "act" and not self.act_available else True

    def action_act(self) -> None:
        self.acted += 1


async def test_a_key_made_unavailable_is_dimmed_in_place_and_its_click_does_nothing():
    app = DimmingApp()
    async with app.run_test() as pilot:
        footer = app.query_one(KeyFooter)
        await wait_until(pilot, lambda: len(footer.query(FooterKey)) >= 2, "the footer's keys")
        keys = list(footer.query(FooterKey))
        assert [(k, d) for k, d, _ in shown(footer)][:2] == [("a", "Act"), ("b", "Other")]
        app.act_available = False
        app.refresh_bindings()
        await wait_until(pilot, lambda: shown(footer)[0][2], "'a' dimmed")
        assert list(footer.query(FooterKey)) == keys  # the same widgets, not rebuilt
        assert not shown(footer)[1][2]
        await assert_as_textual_shows_it(pilot, footer)
        await pilot.click(footer.query(FooterKey).first())
        await pilot.pause()
        assert app.acted == 0
        app.act_available = True
        app.refresh_bindings()
        await wait_until(pilot, lambda: not shown(footer)[0][2], "'a' available again")
        await pilot.click(footer.query(FooterKey).first())
        await wait_until(pilot, lambda: app.acted == 1, "the click to act")
