"""The terminal chat's ``!commands``, as one table: each row's name, arguments, help line,
handler, other names and (for Tab) the values its argument takes. ``!help`` prints the table,
the completer reads it, and ``Repl.run_command`` dispatches through it.

A new command is a handler ``(repl, arg) -> None`` in the module of its concept and a row
here. Besides the table, every sampler setting is a command of its own (``!temp 0.7``), from
``FIELD_INFO``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..chat import formats, samplers
from ..chat.samplers import FIELD_INFO
from . import chat_commands, file_commands, loom_commands, setting_commands

if TYPE_CHECKING:
    from .loop import Repl


@dataclass(frozen=True)
class Command:
    name: str
    arguments: str  # as !help shows them: "", "NAME", "FILE", "on|off|default"
    help: str
    handler: Callable[[Repl, str], None]
    aliases: tuple[str, ...] = ()
    choices: Callable[[], list[str]] | None = None  # the argument's values, for Tab

    @property
    def usage(self) -> str:
        return f"{self.name} {self.arguments}".rstrip()

    def argument_values(self) -> list[str]:
        """What Tab offers for the argument: ``choices``, or the words of ``on|off|default``."""
        if self.choices is not None:
            return self.choices()
        return self.arguments.split("|") if "|" in self.arguments else []


def show_help(repl: Repl, arg: str) -> None:
    for line in help_lines():
        repl.out.line(line)


COMMANDS: Mapping[str, Command] = {
    command.name: command
    for command in (
        Command("help", "", "list the commands", show_help, ("?",)),
        Command("reroll", "", "write the last reply again", chat_commands.reroll),
        Command("continue", "", "extend the last reply", chat_commands.continue_reply),
        Command("undo", "", "remove the last message", chat_commands.undo, ("remove", "pop")),
        Command(
            "reset",
            "",
            "clear the chat (keeps the system prompt)",
            chat_commands.reset,
            ("clear",),
        ),
        Command("stats", "", "context use and the last reply's speed", chat_commands.stats),
        Command("prompt", "", "show the prompt text the model sees", chat_commands.show_prompt),
        Command("sampler", "", "show the sampler settings", setting_commands.show_sampler),
        Command(
            "preset",
            "NAME",
            "use a sampler preset",
            setting_commands.use_preset,
            choices=samplers.available,
        ),
        Command(
            "format",
            "NAME",
            "use a prompt format (or auto)",
            setting_commands.use_format,
            choices=lambda: ["auto", *formats.available()],
        ),
        Command(
            "think",
            "on|off|default",
            "switch the model's thinking, if it can",
            setting_commands.think,
        ),
        Command("save", "FILE", "save the chat as JSON", file_commands.save),
        Command("load", "FILE", "load a chat saved with save", file_commands.load),
        # the loom: the chat as a tree of messages
        Command("tree", "", "show the chat's tree, the active path marked", loom_commands.tree),
        Command("go", "N", "switch to node N of !tree and show its branch", loom_commands.go),
        Command("alt", "[N]", "grow N alternative replies, pick one", loom_commands.alt),
        Command(
            "summarise",
            "",
            "ask the model for a summary (chat unchanged)",
            chat_commands.summarise,
            ("summarize", "summary"),
        ),
        Command("quit", "", "end the chat", chat_commands.quit, ("exit", "q")),
    )
}

_BY_ALIAS = {alias: command for command in COMMANDS.values() for alias in command.aliases}


def find(name: str) -> Command | None:
    """The command a name or one of its other names stands for."""
    return COMMANDS.get(name) or _BY_ALIAS.get(name)


def help_lines() -> list[str]:
    """``!help``: the table, then the sampler settings, each a command of its own."""
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"  {command.usage:<{width}}  {command.help}" for command in COMMANDS.values()]
    lines.append(f"  {'NAME VALUE':<{width}}  change one sampler setting, e.g. temp 0.7")
    lines.append(f"  {'':<{width}}  ({', '.join(FIELD_INFO)})")
    return lines
