"""Chats in and out of the store as plain data: ``export_json`` (every message with every
version, the settings, no token ids or KV state), ``import_json`` reading it back, and the one
validator of a message (and of a thinking switch) read from outside, which chat files
(ezchat.storage.chatfile) use too.

Data to import is hostile: every problem is one line naming the field and the fix, and a
chat is imported in one transaction, so nothing is half-imported.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import utf8
from ..chat.reasoning import parse_thinking, thinking_setting
from ..chat.roles import normalize_role
from ..errors import EzChatError, StoreError
from .markdown import markdown_from_export
from .messages import MessageRows, StoredMessage
from .schema import DEFAULT_TITLE, SETTINGS

EXPORT_KIND = "ezchat-chat"
EXPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class CheckedMessage:
    """A message from outside, checked: its versions (one for a chat file's message), the one
    shown, and each version's reasoning ('' where it has none)."""

    role: str
    versions: list[str]
    current: int
    reasonings: list[str]

    def plain(self) -> dict[str, str]:
        """The current version as ``{"role", "content"}``, with ``"reasoning"`` when it has one."""
        data = {"role": self.role, "content": self.versions[self.current]}
        if self.reasonings[self.current]:
            data["reasoning"] = self.reasonings[self.current]
        return data


def check_message(item: Any, where: str, error: type[EzChatError]) -> CheckedMessage:
    """One message: ``{"role", "content"}`` with an optional ``"reasoning"`` (a chat file's), or
    ``{"role", "versions", "current", "reasonings"}`` (an export's). ``where`` names it in the
    one-line ``error`` raised for a mistake (``"chat.json: message 3"``)."""
    if not isinstance(item, dict):
        raise error(f'{where} is not an object; write {{"role": ..., "content": ...}}')
    role, versions = item.get("role"), item.get("versions")
    if versions is None and isinstance(item.get("content"), str):
        versions = [item["content"]]
    if not isinstance(role, str) or versions is None:
        raise error(f'{where} needs a "role" and a "content" string')
    try:
        role = normalize_role(role)
    except ValueError as exc:
        raise error(f"{where}: {exc}") from None
    if (
        not isinstance(versions, list)
        or not versions
        or not all(isinstance(v, str) for v in versions)
    ):
        raise error(f'{where}: "versions" must be a non-empty list of strings')
    current = item.get("current", len(versions) - 1)
    if not isinstance(current, int) or not 0 <= current < len(versions):
        raise error(f'{where}: "current" must be an index from 0 to {len(versions) - 1}')
    reasonings = _reasonings(item, where, error, len(versions), current)
    for index, (text, reasoning) in enumerate(zip(versions, reasonings, strict=True)):
        label = where if len(versions) == 1 else f"{where} version {index}"
        utf8.check(text, label)
        utf8.check(reasoning, f"{label} reasoning")
    return CheckedMessage(role, versions, current, reasonings)


def check_thinking(value: Any, where: str, error: type[EzChatError]) -> bool | None:
    """A thinking switch from outside (an export's ``settings.thinking``, a chat file's
    ``thinking``): "on", "off", or "default" / '' for the template's default."""
    if isinstance(value, str):
        try:
            return parse_thinking(value)
        except ValueError:
            pass
    raise error(f"{where} is {value!r}; use on, off or '' (the template's default)")


def _reasonings(
    item: dict[str, Any], where: str, error: type[EzChatError], count: int, current: int
) -> list[str]:
    if "reasonings" in item:
        reasonings = item["reasonings"]
        if (
            not isinstance(reasonings, list)
            or len(reasonings) != count
            or not all(isinstance(r, str) for r in reasonings)
        ):
            raise error(f'{where}: "reasonings" must be a list of strings, one for each version')
        return reasonings
    reasoning = item.get("reasoning", "")
    if not isinstance(reasoning, str):
        raise error(f'{where}: "reasoning" must be a string')
    reasonings = [""] * count
    reasonings[current] = reasoning  # a chat file's message: its one version's
    return reasonings


class ChatExchange(MessageRows):
    """Export and import of the chats in a StoreFile (mixed into ChatStore)."""

    def export_json(self, chat_id: int) -> dict[str, Any]:
        """The chat as plain data (no token ids or state): ``import_json`` reads it back."""
        summary = self.chat(chat_id)
        return {
            "kind": EXPORT_KIND,
            "version": EXPORT_VERSION,
            "title": summary.title,
            "created": summary.created.isoformat(),
            "updated": summary.updated.isoformat(),
            "settings": self.chat_settings(chat_id),
            "messages": [_exported(m) for m in self.messages(chat_id)],
        }

    def export_markdown(self, chat_id: int) -> str:
        """The chat for reading: a title, its settings, then each message's current version."""
        return markdown_from_export(self.export_json(chat_id))

    def import_json(self, data: dict[str, Any] | str) -> int:
        """A new chat from ``export_json`` data (a dict or its JSON text); returns its id."""
        title, settings, created, messages = checked_export(data)
        with self._writing() as conn:
            now = time.time()
            cursor = conn.execute(
                f"INSERT INTO chats (title, created, updated, {', '.join(SETTINGS)}) "
                f"VALUES (?, ?, ?, {', '.join('?' * len(SETTINGS))})",
                (title, created or now, now, *(settings.get(key, "") for key in SETTINGS)),
            )
            chat_id = int(cursor.lastrowid)
            for position, message in enumerate(messages):
                versions, reasonings = message.versions, message.reasonings
                message_id = self._insert(
                    conn, chat_id, position, message.role, versions[0], None, reasonings[0]
                )
                for index, content in enumerate(versions[1:], start=1):
                    conn.execute(
                        "INSERT INTO versions (message_id, idx, content, reasoning) "
                        "VALUES (?, ?, ?, ?)",
                        (message_id, index, content, reasonings[index]),
                    )
                conn.execute(
                    "UPDATE messages SET current = ? WHERE id = ?", (message.current, message_id)
                )
            return chat_id


def _exported(message: StoredMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "role": message.role,
        "versions": list(message.versions),
        "current": message.current,
    }
    if any(message.reasonings):
        data["reasonings"] = list(message.reasonings)
    return data


def checked_export(
    data: dict[str, Any] | str,
) -> tuple[str, dict[str, str], float | None, list[CheckedMessage]]:
    """Validate ``export_json`` data; every problem names the field and what it should be."""

    def bad(where: str, what: str) -> StoreError:
        return StoreError(f"chat import: {where} {what}; fix the file or export the chat again")

    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise bad("the text", f"is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad("the data", "must be a JSON object from an ezchat chat export")
    if data.get("kind", EXPORT_KIND) != EXPORT_KIND:
        raise bad("'kind'", f"is {data.get('kind')!r}, not {EXPORT_KIND!r}")
    version = data.get("version", EXPORT_VERSION)
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise bad("'version'", f"is {version!r}; this ezchat reads up to {EXPORT_VERSION}")
    title = data.get("title", DEFAULT_TITLE)
    if not isinstance(title, str):
        raise bad("'title'", "must be a string")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise bad("'settings'", "must be an object")
    settings = dict(settings)  # the caller's data stays as it was
    for key, value in settings.items():
        if key not in SETTINGS:
            raise bad(f"settings.{key}", f"is unknown (use {', '.join(SETTINGS)})")
        if not isinstance(value, str):
            raise bad(f"settings.{key}", "must be a string")
        if key == "thinking":
            where = "chat import: settings.thinking"
            settings[key] = thinking_setting(check_thinking(value, where, StoreError))
    created = None
    if isinstance(data.get("created"), str):
        try:
            created = datetime.fromisoformat(data["created"]).timestamp()
        except ValueError:
            raise bad("'created'", "is not an ISO date") from None
    raw_messages = data.get("messages", [])
    if not isinstance(raw_messages, list):
        raise bad("'messages'", "must be a list")
    messages = [
        check_message(item, f"chat import: message {number}", StoreError)
        for number, item in enumerate(raw_messages, start=1)
    ]
    return title, settings, created, messages
