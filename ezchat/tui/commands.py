"""The chat's commands in the command palette (ctrl+p), made from the actions table."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .actions import palette_entries


class EzChatCommands(Provider):
    """Every palette entry of ezchat/tui/actions.py, run on the chat screen it was opened on."""

    async def discover(self) -> Hits:
        for entry in palette_entries():
            yield DiscoveryHit(
                entry.title, partial(self.screen.run_action, entry.action), help=_help(entry.help)
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in palette_entries():
            score = matcher.match(entry.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(entry.title),
                    partial(self.screen.run_action, entry.action),
                    text=entry.title,
                    help=_help(entry.help),
                )


def _help(text: str) -> str:
    return text[:1].upper() + text[1:]
