"""The chat screen's ``tree`` action: the tree screen over the Thread's tree, and the
conversation following the node picked there.

The switch itself is the Thread's (``Thread.switch_to``); the ChatLog saves the changed tree
(``ChatLog.sync``: the new active leaf, deleted nodes, bookmarks) like any other change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .prompt_input import PromptInput
from .tree_screen import MemoryKeeper, TreeScreen

if TYPE_CHECKING:
    from ..chat.tree import Node
    from .chat_screen import ChatScreen


class TreeBrowsing:
    """Mixed into ChatScreen."""

    def action_chat_tree(self: ChatScreen) -> None:
        """Show the chat's whole tree; Enter there makes a node's path the conversation."""
        if not self._can("open the chat tree"):
            return
        tree = self.thread.tree
        before = [node.id for node in tree.path_view()]
        screen = TreeScreen(tree, MemoryKeeper(tree))

        async def done(node: Node | None) -> None:
            if node is not None:
                self.thread.switch_to(node)
            if [n.id for n in tree.path_view()] != before or screen.deleted:
                self.chat.sync()
                self.candidates_pane.clear()
                await self._show_conversation()
                self._evaluate_switch()
            self.query_one(PromptInput).focus()

        self.app.push_screen(screen, done)
