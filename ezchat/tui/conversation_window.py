"""The conversation column's moves to either end of a long chat (mixed into ConversationView).

The column mounts a window of the chat's messages, ``_first_mounted`` to ``_end_mounted``:
on open the newest (see ConversationView.show). Home shows the first messages instead, the
first at once and the screen below it filled a message a frame, so that Home reaches the first
message of a 2,000-message chat in one press without mounting the 2,000 (a second or more of
Textual's time per screenful of Markdown on a slow CPU); scrolling down then mounts later
messages a batch at a time, and End, or a new message, shows the newest again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from .. import gates

if TYPE_CHECKING:
    from .conversation import MessageView

# On open the column mounts the newest message, then earlier ones until they fill
# FIRST_SCREENS screens (one a frame, FILL_PAUSE_SECONDS apart, see ConversationView.show; Home
# fills below the first the same way), and SCREENS_AHEAD more when the user scrolls near the
# end of what is mounted (at most BATCH_MESSAGES each time). Each message costs Textual about
# 0.1-0.2 s of styling and layout on a slow CPU (its Markdown blocks are widgets), so a chat
# opens with one screenful.
FIRST_SCREENS = 1
FILL_PAUSE_SECONDS = 0.1
SCREENS_AHEAD = 2
BATCH_MESSAGES = 20
# Messages mounted by a fill are drawn as plain text first, and as Markdown one at a time once
# the user has not typed for QUIET_SECONDS (see _finish_drafts).
QUIET_SECONDS = 0.3


class WindowMoves:
    """Home, End and scrolling down past the last mounted message."""

    @property
    def unmounted_after(self) -> int:
        """How many later messages are not mounted (after Home, until End)."""
        return self._count - self._end_mounted

    def action_scroll_home(self) -> None:
        """Home goes to the first message: when it is not mounted, the first ones are shown
        in place of the ones mounted now (see show_start)."""
        if self._first_mounted > 0 and self._make_view is not None:
            self.call_later(self.show_start)
        else:
            super().action_scroll_home()

    def action_scroll_end(self) -> None:
        """End goes to the newest message, mounting the newest again after Home."""
        if self.unmounted_after and self._make_view is not None:
            self.call_later(self._show_end)
        else:
            super().action_scroll_end()

    def _column_has_focus(self) -> bool:
        # a focused message is removed by the move: its replacement takes the focus, so that
        # the next key goes to the column still
        focused = self.screen.focused
        return focused is not None and focused.parent is self

    async def _show_end(self) -> None:
        refocus = self._column_has_focus()
        await self.show(self._count, self._make_view)
        if refocus and self.views:
            self.views[-1].focus(scroll_visible=False)

    async def show_start(self) -> None:
        """Show the first message at the top, then, one message a frame, later ones until the
        screen is full (as ``show`` does above the newest)."""
        if self._make_view is None or self._count == 0:
            return
        self._shown += 1
        refocus = self._column_has_focus()
        self.anchor(False)
        self._drafts = []
        await self.remove_children()
        self._first_mounted = 0
        self._end_mounted = 1
        first = self._make_view(0)
        await self.mount(first)
        if refocus:
            first.focus(scroll_visible=False)
        self.scroll_home(animate=False, immediate=True)
        self.filling = self.unmounted_after > 0
        if self.filling:
            self.call_after_refresh(self._fill_below, self._shown)

    async def _fill_below(self, shown: int) -> None:
        """``_fill_screen``'s counterpart after Home: one message a frame below the last."""
        if shown != self._shown:
            return
        if self._fill_after_paint(partial(self._fill_below, shown)):
            return
        if self._fill_held(partial(self._fill_below, shown)):
            return
        if not self.unmounted_after or self._make_view is None or self._screen_full:
            self._finish_drafts(shown)
            return
        if self._typing_wait(partial(self._fill_below, shown)):
            return
        self._loading_earlier = True
        try:
            await self.mount(self._draft(self._end_mounted))
            self._end_mounted += 1
        finally:
            self._loading_earlier = False
        self.call_after_refresh(
            self.set_timer, FILL_PAUSE_SECONDS, partial(self._fill_below, shown)
        )

    # --- drafts: plain text while the screen fills, Markdown once the user pauses -----------

    def user_typed(self) -> None:
        """The user typed in the prompt: drafts wait QUIET_SECONDS more for their Markdown."""
        self._typed_at = time.monotonic()

    def _fill_after_paint(self, step: Callable[[], object]) -> bool:
        """Put a fill's ``step`` off to after the next paint, and return True, while a batch
        is mounting (the user scrolled meanwhile) or the column is not laid out yet (when any
        height would count as full)."""
        if self._loading_earlier or not self.size.height:
            self.call_after_refresh(step)
            return True
        return False

    def _fill_held(self, step: Callable[[], object]) -> bool:
        """Put ``step`` off while a gate holds the fill (tests look at a chat mid-fill)."""
        if gates.holds("fill", self._end_mounted - self._first_mounted):
            self.set_timer(FILL_PAUSE_SECONDS, step)
            return True
        return False

    @property
    def _screen_full(self) -> bool:
        """Over FIRST_SCREENS screens mounted, so that it can be scrolled (which mounts more)."""
        return self.virtual_size.height > FIRST_SCREENS * self.size.height

    def _typing_wait(self, callback: Callable[[], object]) -> bool:
        """While the user types (in the last QUIET_SECONDS), put ``callback`` off until they
        pause and return True: a message mounted costs the UI 20-60 ms, which a key typed
        meanwhile waits for."""
        quiet_for = time.monotonic() - self._typed_at
        if quiet_for >= QUIET_SECONDS:
            return False
        self.set_timer(max(QUIET_SECONDS - quiet_for, 0.05), callback)
        return True

    def _draft(self, index: int) -> MessageView:
        """Message ``index``'s view, drawn as plain text until ``_finish_drafts`` gets to it."""
        view = self._make_view(index)
        view.draft = True
        self._drafts.append(view)
        return view

    def _finish_drafts(self, shown: int) -> None:
        """Draw the fill's drafts as Markdown, the newest first, one a frame, and only after
        QUIET_SECONDS without typing: one message's Markdown widgets cost Textual 60-130 ms
        on a slow CPU, more than a key may wait. ``filling`` ends with the last one."""
        if shown != self._shown:
            return
        self._drafts = [view for view in self._drafts if view.is_attached]
        if not self._drafts:
            self.filling = False
            return
        quiet_for = time.monotonic() - self._typed_at
        if quiet_for < QUIET_SECONDS or self._loading_earlier:
            wait = max(QUIET_SECONDS - quiet_for, 0.05)
            self.set_timer(wait, partial(self._finish_drafts, shown))
            return
        self.call_later(self._finish_one_draft, shown)

    async def _finish_one_draft(self, shown: int) -> None:
        if shown == self._shown and self._drafts:
            # in the order mounted: from the newest message up, or from the first down
            view = self._drafts.pop(0)
            if view.is_attached:
                await view.finish_draft()
        self.call_after_refresh(
            self.set_timer, FILL_PAUSE_SECONDS, partial(self._finish_drafts, shown)
        )

    def _request_later(self) -> None:
        if not self._loading_earlier:
            self._loading_earlier = True
            self.call_later(self._mount_later)

    async def _mount_later(self) -> None:
        """Mount the batch of messages after the last mounted one (below the screen, so the
        ones on it stay where they are)."""
        try:
            if not self.unmounted_after or self._make_view is None:
                return
            height = max(self.size.height or self.app.size.height, 1)
            width = self.size.width or self.app.size.width
            views: list[MessageView] = []
            rows = 0
            while self.unmounted_after - len(views) > 0 and len(views) < BATCH_MESSAGES:
                view = self._make_view(self._end_mounted + len(views))
                rows += view.estimated_rows(width)
                views.append(view)
                if rows >= SCREENS_AHEAD * height:
                    break
            await self.mount_all(views)
            self._end_mounted += len(views)
        finally:
            self._loading_earlier = False
