"""The app's commands in the command palette (ctrl+p)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, action, help): every action the app has, bound to a key or not.
COMMANDS: list[tuple[str, str, str]] = [
    ("Stop the reply", "stop", "End the reply now; the text so far stays in the chat"),
    ("Reroll", "reroll", "A new reply to the same prompt; earlier versions stay browsable"),
    ("Continue the reply", "continue_reply", "The bot goes on with its last reply"),
    ("Prefix the next reply", "toggle_prefix", "What you type starts the bot's next reply"),
    ("Inspect tokens", "inspect_tokens", "Candidates at each token of the last reply"),
    ("Edit sampler values", "edit_sampler", "A form with every sampler setting, range-checked"),
    ("Switch sampler preset", "pick_preset", "Choose one of the available presets"),
    ("Switch prompt format", "pick_format", "Choose one of the available formats"),
    ("Change the system prompt", "system_prompt", "Replace or remove the system message"),
    ("Clear the chat", "clear_chat", "Delete every message but the system prompt"),
    ("New chat", "new_chat", "Start a new chat; this one stays saved"),
    ("Chats", "chat_list", "Open, rename, delete or export saved chats"),
    ("Export this chat", "export_chat", "Write the chat as Markdown and JSON files"),
]


class EzChatCommands(Provider):
    async def discover(self) -> Hits:
        for title, action, help_text in COMMANDS:
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    text=title,
                    help=help_text,
                )
