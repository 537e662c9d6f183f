"""The heatmap toggle of the chat screen (binding id ``heatmap``): while it is on, every bot
reply in the conversation view shows its tokens coloured by probability (ezchat/tui/heatmap.py)
in place of its rendered text, and a legend stands above the input. The colours come from the
tokens' stored ``TokenInfo``, so turning it on computes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Static

from .conversation import MessageView
from .heatmap import heat_legend, piece_reader, reply_heat

if TYPE_CHECKING:
    from .chat_screen import ChatScreen


class HeatText(Static):
    """A reply's heatmap, shown in its MessageView instead of the body while the toggle is on."""

    SCOPED_CSS = False  # the rules below reach the MessageView around it
    DEFAULT_CSS = """
    MessageView.-heat > .body { display: none; }
    HeatText { padding: 0 1; }
    """


class HeatLegend(Static):
    """The legend above the input, shown while the heatmap is on."""

    DEFAULT_CSS = """
    HeatLegend { height: auto; padding: 0 1; display: none; }
    HeatLegend.-on { display: block; }
    """


class HeatmapToggle:
    """Mixed into ChatScreen."""

    heatmap_on: bool = False

    def action_toggle_heatmap(self: ChatScreen) -> None:
        if self.thread is None:
            return
        self.heatmap_on = not self.heatmap_on
        self.refresh_heat()
        if self.heatmap_on:
            self.notify("Heatmap on: each token's background is its probability (see the legend).")

    def refresh_heat(self: ChatScreen) -> None:
        """Colour (or stop colouring) every reply shown, after the toggle or a change."""
        legend = self.query("#heat-legend")
        if legend:
            legend.first().set_class(self.heatmap_on, "-on")
        for view in self.query(MessageView):
            self._show_heat(view)

    def _show_heat(self: ChatScreen, view: MessageView) -> None:
        for old in view.query(HeatText):
            old.remove()
        heat = None
        if self.heatmap_on and view.role == "bot" and view.index < len(self.thread.messages):
            node = self.thread.node_at(view.index)
            heat = reply_heat(node.tokens, node.token_info, piece_reader(self.thread.model))
        view.set_class(heat is not None, "-heat")
        if heat is not None:
            view.mount(HeatText(heat, classes="heat"))

    def heat_legend_widget(self) -> HeatLegend:
        return HeatLegend(heat_legend(), id="heat-legend")
