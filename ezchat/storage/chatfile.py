"""Chats as JSON files: what the REPL's ``save``/``load`` write and read, and what
``ezchat prompt`` renders.

A file is either a bare list of ``{"role": ..., "content": ...}`` messages (the shape most tools
write) or an object with ``messages`` and, optionally, the ``format``, ``sampler`` and
``thinking`` switch the chat used. Each message and the switch are checked by the validators
chat imports use (ezchat.storage.exchange), so mistakes are one-line ``UserFileError``s naming
the file, the message and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat.reasoning import thinking_setting
from ..errors import UserFileError
from ..settings.userfiles import read_user_text
from .exchange import check_message, check_thinking

if TYPE_CHECKING:
    from ..chat.thread import Thread

FILE_VERSION = 1


@dataclass(slots=True)
class ChatFile:
    messages: list[dict[str, str]]
    format: str | None = None
    sampler: str | None = None
    sampler_settings: dict[str, Any] = field(default_factory=dict)
    # the thinking switch, when the file says (None: the template's default)
    thinking: bool | None = None


def chat_to_dict(thread: Thread) -> dict[str, Any]:
    return {
        "version": FILE_VERSION,
        "format": thread.format.name,
        "sampler": thread.sampler.name,
        "sampler_settings": thread.sampler.to_dict(),
        "thinking": thinking_setting(thread.thinking),
        "messages": [_message_data(m) for m in thread.messages],
    }


def _message_data(message: dict[str, str]) -> dict[str, str]:
    data = {"role": message["role"], "content": message["content"]}
    if message.get("reasoning"):
        data["reasoning"] = message["reasoning"]  # a reply's reasoning, apart from its answer
    return data


def write_chat_file(path: str | Path, thread: Thread) -> Path:
    path = Path(path).expanduser()
    text = json.dumps(chat_to_dict(thread), ensure_ascii=False, indent=2) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserFileError(
            f"{path}: cannot write the chat ({exc.strerror or exc}); pick a writable path"
        ) from None
    return path


def read_chat_file(path: str | Path) -> ChatFile:
    path = Path(path).expanduser()
    text = read_user_text(path, "a .json chat file", "UTF-8 JSON")
    return parse_chat_text(text, str(path))


def parse_chat_text(text: str, where: str) -> ChatFile:
    """A ChatFile from JSON text; ``where`` names its source in error messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserFileError(
            f"{where}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg}); fix the JSON"
        ) from None
    except RecursionError:
        raise UserFileError(
            f"{where}: the JSON nests too deeply to be a chat; fix the JSON"
        ) from None
    return parse_chat(data, where)


def parse_chat(data: Any, where: str) -> ChatFile:
    """A ChatFile from decoded JSON: a list of messages or ``{"messages": [...], ...}``."""
    shape = 'a list of {"role", "content"} objects or an object with "messages"'
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict) or "messages" not in data:
        raise UserFileError(f"{where}: expected {shape}")
    raw = data["messages"]
    if not isinstance(raw, list):
        raise UserFileError(f'{where}: "messages" must be a list; expected {shape}')
    messages = [
        check_message(item, f"{where}: message {number}", UserFileError).plain()
        for number, item in enumerate(raw, start=1)
    ]
    fmt, sampler = data.get("format"), data.get("sampler")
    settings = data.get("sampler_settings", {})
    for key, value in (("format", fmt), ("sampler", sampler)):
        if value is not None and not isinstance(value, str):
            raise UserFileError(f'{where}: "{key}" must be a name (a string)')
    if not isinstance(settings, dict):
        raise UserFileError(f'{where}: "sampler_settings" must be an object')
    thinking = check_thinking(data.get("thinking", ""), f'{where}: "thinking"', UserFileError)
    return ChatFile(messages, fmt, sampler, settings, thinking)
