"""``!save`` and ``!load``: the chat as a JSON file (ezchat.storage.chatfile's format)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..chat import samplers
from ..chat.samplers import SamplerSettings
from ..errors import UserFileError
from ..storage.chatfile import read_chat_file, write_chat_file

if TYPE_CHECKING:
    from .loop import Repl


def save(repl: Repl, arg: str) -> None:
    if not arg:
        raise UserFileError("save needs a file name, e.g. !save chat.json")
    path = write_chat_file(arg, repl.thread)
    repl.note(f"(saved {len(repl.thread.messages)} messages to {path})")


def load(repl: Repl, arg: str) -> None:
    if not arg:
        raise UserFileError("load needs a file name, e.g. !load chat.json")
    chat = read_chat_file(arg)
    # Everything is checked before the thread changes, so a bad file changes nothing.
    sampler = None
    if chat.sampler_settings:
        try:
            sampler = SamplerSettings(**chat.sampler_settings).validate()
        except (TypeError, ValueError) as exc:
            raise UserFileError(
                f"{arg}: bad sampler_settings ({exc}); fix or remove them"
            ) from None
    elif chat.sampler:
        sampler = samplers.load(chat.sampler)
    if chat.format and chat.format != repl.thread.format.name:
        repl.thread.set_format(chat.format)
    if sampler is not None:
        repl.thread.sampler = sampler
    repl.thread.set_thinking(chat.thinking)
    thread = repl.thread
    thread.messages = [thread.message_from_dict(m) for m in chat.messages]
    repl.stopped = False
    repl.show_messages()
    repl.note(f"(loaded {len(chat.messages)} messages from {arg})")
