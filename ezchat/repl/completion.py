"""Tab completion of the ``!commands``, read from the commands table: a command's name (or a
sampler setting's), then the values its argument takes."""

from __future__ import annotations

from collections.abc import Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..chat.samplers import FIELD_INFO
from .commands import COMMANDS, find


class CommandCompleter(Completer):
    """At the chat's prompt (``bang=True``) a line is a command only after ``!`` (``!!`` is a
    system message); at the ``command>`` prompt every line is one."""

    def __init__(self, bang: bool) -> None:
        self.bang = bang

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        if self.bang:
            if not text.startswith("!") or text.startswith("!!"):
                return
            text = text[1:]
        name, space, arg = text.lstrip().partition(" ")
        if not space:
            typed = name.lower()
            for word in [*COMMANDS, *FIELD_INFO]:
                if word.startswith(typed):
                    yield Completion(word, start_position=-len(name))
            return
        command = find(name.lower())
        arg = arg.lstrip()
        if command is None or " " in arg:
            return
        for value in command.argument_values():
            if value.lower().startswith(arg.lower()):
                yield Completion(value, start_position=-len(arg))
