"""The chat screen's ``tree`` action: the tree screen over the Thread's tree, and the
conversation following the node picked there.

The switch itself is the Thread's (``Thread.switch_to``). Saving it is the ChatLog's: until
the ChatLog saves the chat as a tree, a switch or a delete that changes the conversation is
kept in memory, and the chat on screen is re-made from the new path as a new, unsaved chat
("… (branch)"); what is sent next saves it whole, and the stored chat it came from stays as
it was, so nothing stored is lost or mixed up. Bookmarks stay in memory. Once the ChatLog
holds the Thread's tree with the store's node ids, a keeper over its ChatStore calls
(``set_bookmark``, ``delete_subtree``, ``set_active_leaf`` in ezchat/storage/nodes.py) takes
``MemoryKeeper``'s place and ``_follow_tree_path`` goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EzChatError
from .chatlog import ChatLog, Entry
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
                self._follow_tree_path()
                self.candidates_pane.clear()
                await self._show_conversation()
            self.query_one(PromptInput).focus()

        self.app.push_screen(screen, done)

    def _follow_tree_path(self: ChatScreen) -> None:
        """Make the chat on screen the Thread's active path (see the module's note)."""
        old = self.chat
        entries = [
            Entry([m["content"]], reasonings=[m.get("reasoning", "")]) for m in self.thread.messages
        ]
        chat = ChatLog(self.thread, self.store, None, format_name=old.format_name, entries=entries)
        title = old.copy_title
        if old.chat_id is not None:
            try:
                title = self.store.chat(old.chat_id).title
            except EzChatError:
                title = f"chat {old.chat_id}"
        if title is not None:
            chat.copy_title = f"{title} (branch)"
            self.notify(
                f"Switched branches. Saving a chat's tree is not there yet: what you send next "
                f"saves this conversation as a new chat, '{chat.copy_title}'; the saved chat "
                "stays as it was.",
                severity="warning",
                timeout=10,
            )
        old.release()
        self.chat = self._adopt(chat)
