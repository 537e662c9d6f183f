"""The key bar at the bottom of every screen: Textual's Footer, rebuilt only when it must.

Textual's Footer mounts its keys afresh (a dozen widgets, 20-60 ms of Textual's time on a
slow CPU) each time the screen's bindings may have changed: on every focus change and every
``refresh_bindings``. Opening a chat does both several times, right at the first paint, and a
key typed then waited for each rebuild. This footer rebuilds only when the keys it shows
change; when only some become enabled or disabled, it dims or undims the keys it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.screen import Screen

# (key, key display, description, action, tooltip, group), then whether it is enabled
KeyShown = tuple[tuple[str, str, str, str, str, int | None], bool]


class KeyFooter(Footer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._keys_shown: list[KeyShown] | None = None  # what the last compose showed

    def _shown_keys(self) -> list[KeyShown]:
        """What ``Footer.compose`` would show now, in its order: the first binding of each
        action the footer shows, then the command palette's."""
        active = self.screen.active_bindings
        firsts: dict[str, KeyShown] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in firsts:
                group = id(binding.group) if binding.group is not None else None
                look = (binding.key, self.app.get_key_display(binding), binding.description)
                firsts[binding.action] = ((*look, binding.action, tooltip, group), enabled)
        keys = list(firsts.values())
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE and palette:
            _node, binding, enabled, tooltip = palette
            look = (binding.key, self.app.get_key_display(binding), binding.description)
            keys.append(((*look, binding.action, tooltip or binding.tooltip, None), enabled))
        return keys

    def compose(self) -> ComposeResult:
        self._keys_shown = self._shown_keys() if self._bindings_ready else None
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._update_keys)

    async def _update_keys(self) -> None:
        if not self.is_attached:
            return
        keys = self._shown_keys()
        if keys == self._keys_shown:
            return
        old = self._keys_shown
        if old is not None and [look for look, _ in keys] == [look for look, _ in old]:
            for footer_key, (_look, enabled) in zip(self.query(FooterKey), keys, strict=False):
                # FooterKey reads _disabled when clicked and dims by its class
                footer_key._disabled = not enabled
                footer_key.set_class(not enabled, "-disabled")
            self._keys_shown = keys
            return
        await self.recompose()
