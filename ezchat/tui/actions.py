"""Every action of the chat, once: its binding id, its keys, what the footer calls it and what
the command palette says about it. The widgets' BINDINGS, the palette, the footer and the
README's key tables are all made from ACTIONS, so a new action or a changed key is one line
here; ``python -m ezchat.tui.actions`` prints the README tables (a test keeps them equal).

The id is what a ``[keymap]`` entry in the config file names, so ids never change once
released; keys may.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from textual.binding import Binding

# Where an action's keys work: the chat screen (always), the focused message, the input box,
# the candidates pane, or the tree screen. The README has one table per place.
SCREEN, MESSAGE, INPUT, CANDIDATES = "screen", "message", "input", "candidates"
TREE, GROW = "tree", "grow"
PLACES = {
    SCREEN: "Anywhere in the chat",
    MESSAGE: "On a focused message (Tab or click)",
    INPUT: "In the input box",
    CANDIDATES: "In the candidates pane",
    TREE: "In the tree screen",
    GROW: "In the grow panel",
}


@dataclass(frozen=True)
class Action:
    id: str  # the [keymap] name
    keys: str  # Textual key names, comma-separated; "" for a palette-only action
    action: str  # the Textual action string the keys run
    label: str  # the footer's word for it
    help: str  # what it does, for the palette and the README
    place: str = SCREEN
    title: str = ""  # the palette's entry; "" keeps it out of the palette
    show: bool = True  # shown in the footer
    # a priority binding runs before the focused widget sees the key (the input box would
    # otherwise take Enter and the arrows for itself)
    priority: bool = False

    def binding(self) -> Binding:
        return Binding(
            self.keys,
            self.action,
            self.label,
            show=self.show,
            id=self.id,
            priority=self.priority,
        )


ACTIONS: tuple[Action, ...] = (
    Action(
        "stop",
        "escape",
        "stop",
        "Stop",
        "stop the reply within one token; the partial reply stays",
        title="Stop the reply",
    ),
    Action(
        "reroll",
        "ctrl+r",
        "reroll",
        "Reroll",
        "a new reply to the same prompt; earlier versions stay browsable",
        title="Reroll",
    ),
    Action(
        "continue",
        "ctrl+g",
        "continue_reply",
        "Continue",
        "the bot goes on with its last reply",
        title="Continue the reply",
    ),
    Action(
        "prefix",
        "ctrl+b",
        "toggle_prefix",
        "Prefix",
        "what you type next starts the bot's reply",
        title="Prefix the next reply",
    ),
    Action(
        "sampler_form",
        "f2",
        "edit_sampler",
        "Sampler",
        "edit the sampler's values in a form that checks them",
        title="Edit sampler values",
    ),
    Action(
        "preset",
        "f3",
        "pick_preset",
        "Preset",
        "switch to another sampler preset",
        title="Switch sampler preset",
    ),
    Action(
        "format",
        "f4",
        "pick_format",
        "Format",
        "switch the prompt format",
        title="Switch prompt format",
    ),
    Action(
        "chats",
        "f5",
        "chat_list",
        "Chats",
        "saved chats: open, rename (r), delete (d), export (x)",
        title="Chats",
    ),
    Action(
        "tokens",
        "f8",
        "inspect_tokens",
        "Tokens",
        "the candidates at each token of the last reply",
        title="Inspect tokens",
    ),
    Action(
        "tree",
        "ctrl+t",
        "chat_tree",
        "Tree",
        "the chat's whole tree: every reply, reroll and branch; Enter makes a node's path the conversation",
        title="Chat tree",
        show=False,
    ),
    Action(
        "grow",
        "ctrl+o",
        "grow",
        "Grow",
        "grow N alternative replies at once ([loom] grow, 4 unless set) and pick one; all N stay in the tree",
        title="Grow alternative replies",
        show=False,
    ),
    Action(
        "thinking",
        "f9",
        "toggle_thinking",
        "Thinking",
        "thinking off, or on again, for a template that has the switch; saved with the chat",
        title="Switch thinking",
        show=False,
    ),
    Action(
        "heatmap",
        "f10",
        "toggle_heatmap",
        "Heatmap",
        "colour every reply's tokens by their probability, low to high (a legend shows while on)",
        title="Toggle the probability heatmap",
    ),
    Action(
        "new_chat",
        "ctrl+n",
        "new_chat",
        "New chat",
        "start a new chat; the current one stays saved",
        title="New chat",
        show=False,
    ),
    Action(
        "system_prompt",
        "",
        "system_prompt",
        "System",
        "replace or remove the system message",
        title="Change the system prompt",
    ),
    Action(
        "clear_chat",
        "",
        "clear_chat",
        "Clear",
        "delete every message but the system prompt",
        title="Clear the chat",
    ),
    Action(
        "export_chat",
        "",
        "export_chat",
        "Export",
        "write the chat as shown to Markdown and JSON files in exports/ of the data directory (works when the chats file no longer takes writes)",
        title="Export this chat",
    ),
    Action(
        "message.version_previous",
        "left",
        "version(-1)",
        "Older version",
        "the message's previous version, a sibling in the chat's tree (\"2/3\" in its title); the messages after it follow that branch",
        MESSAGE,
    ),
    Action(
        "message.version_next",
        "right",
        "version(1)",
        "Newer version",
        "the message's next version (its next sibling); the messages after it follow",
        MESSAGE,
    ),
    Action("message.edit", "e", "request('edit')", "Edit", "edit the message", MESSAGE),
    Action(
        "message.delete",
        "delete,d",
        "request('delete')",
        "Delete",
        "delete the message, after a confirmation",
        MESSAGE,
    ),
    Action(
        "message.copy",
        "y",
        "request('copy')",
        "Copy",
        "copy the message (OSC 52, plus the system clipboard tool where there is one)",
        MESSAGE,
    ),
    Action(
        "message.insert_system",
        "s",
        "request('insert_system')",
        "Insert system",
        "insert a system message before this one",
        MESSAGE,
    ),
    Action(
        "message.tokens", "t", "request('tokens')", "Tokens", "inspect this reply's tokens", MESSAGE
    ),
    Action(
        "message.reasoning",
        "r",
        "toggle_reasoning",
        "Reasoning",
        "expand or collapse the reply's reasoning (a dim block above the answer)",
        MESSAGE,
    ),
    Action(
        "input.send",
        "enter",
        "send",
        "Send",
        "send the message (in prefix mode: let the bot continue it)",
        INPUT,
        show=False,
        priority=True,
    ),
    Action(
        "input.newline",
        "ctrl+j,shift+enter",
        "newline",
        "New line",
        "start a new line (shift+enter where the terminal reports it)",
        INPUT,
        show=False,
        priority=True,
    ),
    Action(
        "input.history_previous",
        "up",
        "history(-1)",
        "History",
        "on the first line: the message sent before",
        INPUT,
        show=False,
        priority=True,
    ),
    Action(
        "input.history_next",
        "down",
        "history(1)",
        "History",
        "on the last line: the message sent after",
        INPUT,
        show=False,
        priority=True,
    ),
    Action(
        "candidates.previous",
        "left",
        "move(-1)",
        "Previous token",
        "the candidates at the previous token",
        CANDIDATES,
    ),
    Action(
        "candidates.next",
        "right",
        "move(1)",
        "Next token",
        "the candidates at the next token",
        CANDIDATES,
    ),
    Action(
        "candidates.type",
        "i",
        "type_own",
        "Own text",
        "branch the reply at this token with text you type; the old reply stays",
        CANDIDATES,
    ),
    Action("tree.down", "j,down", "cursor(1)", "Down", "the next node", TREE, show=False),
    Action("tree.up", "k,up", "cursor(-1)", "Up", "the node before", TREE, show=False),
    Action("tree.page_down", "pagedown", "page(1)", "Page down", "a screen down", TREE, show=False),
    Action("tree.page_up", "pageup", "page(-1)", "Page up", "a screen up", TREE, show=False),
    Action("tree.first", "g,home", "edge(-1)", "First", "the first node", TREE, show=False),
    Action("tree.last", "G,end", "edge(1)", "Last", "the last node", TREE, show=False),
    Action(
        "tree.parent",
        "h,left",
        "parent",
        "Parent",
        "collapse the node's subtree, or go to its parent",
        TREE,
        show=False,
    ),
    Action(
        "tree.child",
        "l,right",
        "child",
        "Child",
        "expand the node's subtree, or go into its first child",
        TREE,
        show=False,
    ),
    Action(
        "tree.switch",
        "enter",
        "choose",
        "Go",
        "make the node's path the conversation, and go back to it",
        TREE,
    ),
    Action(
        "tree.bookmark",
        "b",
        "bookmark",
        "Bookmark",
        "bookmark the node (★), or take its bookmark off",
        TREE,
    ),
    Action("tree.next_bookmark", "B", "next_bookmark", "Next ★", "the next bookmarked node", TREE),
    Action(
        "tree.delete",
        "d,delete",
        "delete",
        "Delete",
        "delete the node and everything under it, after a confirmation",
        TREE,
    ),
    Action(
        "tree.search",
        "slash",
        "search",
        "Search",
        "search the text of every node (Enter searches, Escape closes the box)",
        TREE,
    ),
    Action("tree.next_hit", "n", "hit(1)", "Next hit", "the next node the search found", TREE),
    Action(
        "tree.previous_hit",
        "N",
        "hit(-1)",
        "Previous hit",
        "the node the search found before",
        TREE,
        show=False,
    ),
    Action("tree.close", "escape", "close", "Close", "back to the chat, nothing switched", TREE),
    Action("grow.down", "down,j", "cursor(1)", "Down", "the next reply", GROW),
    Action("grow.up", "up,k", "cursor(-1)", "Up", "the reply before", GROW),
    Action(
        "grow.pick",
        "enter",
        "pick",
        "Pick",
        "continue the chat from the highlighted reply (or press its number, 1-9)",
        GROW,
    ),
    Action(
        "grow.stop",
        "escape",
        "stop_or_close",
        "Stop / close",
        "while growing: stop all N, each keeps its part; then: close, reply 1 stays the chat's",
        GROW,
    ),
)


def bindings(place: str) -> list[Binding]:
    """The BINDINGS of the widget or screen where ``place``'s keys work."""
    return [action.binding() for action in ACTIONS if action.place == place and action.keys]


def palette_entries() -> list[Action]:
    """The actions the command palette lists, in the table's order."""
    return [action for action in ACTIONS if action.title]


def action_by_id(action_id: str) -> Action:
    return next(action for action in ACTIONS if action.id == action_id)


def current_keys(action_id: str, keymap: dict[str, str], *, first_only: bool = False) -> str:
    """The keys of ``action_id`` as the user sees them: from their [keymap], else the table."""
    keys = keymap.get(action_id) or action_by_id(action_id).keys
    if first_only:
        keys = keys.split(",")[0]
    return keys_text(keys)


_KEY_NAMES = {
    "escape": "Escape",
    "enter": "Enter",
    "delete": "Delete",
    "pageup": "PageUp",
    "pagedown": "PageDown",
    "left": "←",
    "right": "→",
    "up": "↑",
    "down": "↓",
    "slash": "/",
    "home": "Home",
    "end": "End",
}


def keys_text(keys: str) -> str:
    """Keys as the README writes them: "ctrl+r", "F2", "Escape", "ctrl+j / shift+enter"."""
    names = []
    for key in keys.split(","):
        key = key.strip()
        if key.startswith("f") and key[1:].isdigit():
            key = key.upper()
        elif key in _KEY_NAMES:
            key = _KEY_NAMES[key]
        names.append(key)
    return " / ".join(names)


def readme_tables() -> str:
    """The key tables of README.md, one per place, made from ACTIONS."""
    parts = []
    for place, heading in PLACES.items():
        parts += [
            f"{heading}:",
            "",
            "| key | action | id (for `[keymap]`) |",
            "| --- | --- | --- |",
        ]
        for action in ACTIONS:
            if action.place != place:
                continue
            keys = keys_text(action.keys) if action.keys else "palette (ctrl+p)"
            parts.append(f"| {keys} | {action.help} | `{action.id}` |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(readme_tables())
