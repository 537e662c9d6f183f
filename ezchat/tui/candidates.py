"""The candidates pane: the top-k next tokens with probability bars.

While the bot writes, a timer shows the newest token's candidates (the worker only stores the
latest list; a redraw per token would cost more than the token). Afterwards the user moves
through a reply's tokens (left/right) and picks another token (Enter) to regenerate the rest
of the reply from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..safetext import escaped

REFRESH_SECONDS = 0.25
BAR_CELLS = 10
_EIGHTHS = " ▏▎▍▌▋▊▉"


def probability_bar(probability: float, cells: int = BAR_CELLS) -> str:
    """A bar ``cells`` wide filled in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, probability)) * cells * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar.ljust(cells)


def visible_token(text: str) -> str:
    """A token's text, quoted, with its whitespace and terminal controls as escapes (a token
    can be a lone ESC or CR): the exact characters, never obeyed by the terminal."""
    return f'"{escaped(text)}"'


class CandidatesPane(Vertical):
    """``candidates``: the rows shown now, most likely first."""

    BINDINGS = [
        Binding("left", "move(-1)", "Previous token", id="candidates.previous"),
        Binding("right", "move(1)", "Next token", id="candidates.next"),
        Binding("i", "type_own", "Own text", id="candidates.type"),
    ]

    class Move(Message):
        """Show the candidates ``step`` tokens before (-1) or after (+1) the current one."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    class TypeOwn(Message):
        """Branch the reply at the inspected position with text the user types."""

    class Picked(Message):
        """Regenerate the reply from the inspected position with this token."""

        def __init__(self, token_id: int) -> None:
            super().__init__()
            self.token_id = token_id

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.candidates: list = []
        self.chosen: int | None = None
        self._source: Callable[[], Sequence | None] | None = None
        self._shown_source_value: object = None

    def compose(self):
        yield Static("No reply yet.", classes="candidates-header")
        yield OptionList(classes="candidates-list")

    def on_mount(self) -> None:
        self.border_title = "Candidates"
        self._timer = self.set_interval(REFRESH_SECONDS, self._poll, pause=True)

    # --- live: follow the newest token ---------------------------------------------------------

    def follow(self, source: Callable[[], Sequence | None]) -> None:
        """Show ``source()`` every tick until ``stop_following``."""
        self._source = source
        self._shown_source_value = None
        self.query_one(".candidates-header", Static).update("Next token (live)")
        self._timer.resume()

    def stop_following(self) -> None:
        self._timer.pause()
        self._poll()
        self._source = None
        self.query_one(".candidates-header", Static).update(
            "Last token of the reply.  F8 or t on a reply: inspect its tokens"
        )

    def _poll(self) -> None:
        if self._source is None:
            return
        latest = self._source()
        if latest is not None and latest is not self._shown_source_value:
            self._shown_source_value = latest
            self.show(list(latest))

    # --- showing -------------------------------------------------------------------------------

    def show(self, candidates: list, chosen: int | None = None, header: str | None = None) -> None:
        self.candidates = candidates
        self.chosen = chosen
        if header is not None:
            # the header quotes a token: plain Content, so "[/b]" is not read as markup
            self.query_one(".candidates-header", Static).update(Content(header))
        options = self.query_one(".candidates-list", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options([self._row(c) for c in candidates])
        if candidates:
            options.highlighted = (
                highlighted if highlighted is not None and highlighted < len(candidates) else 0
            )

    def _row(self, candidate) -> Option:
        marker = "◀" if candidate.id == self.chosen else " "
        text = Content.assemble(
            (probability_bar(candidate.probability), "bold $accent"),
            f" {candidate.probability:6.1%} ",
            (visible_token(candidate.text), "bold"),
            f" {marker}",
        )
        # No option id: a server's candidates can share one (ids it did not send are -1).
        return Option(text)

    def clear(self, header: str = "No reply yet.") -> None:
        self.show([], header=header)

    # --- inspecting ----------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        self.post_message(self.Move(step))

    def action_type_own(self) -> None:
        self.post_message(self.TypeOwn())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        picked = self.candidates[event.option_index].id
        if picked >= 0:
            self.post_message(self.Picked(picked))
