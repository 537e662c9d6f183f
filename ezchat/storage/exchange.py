"""Chats in and out of the store as plain data: ``export_json`` (the chat's whole tree, every
node with its parent's id, and the settings; no token ids or KV state), ``import_json`` reading
it back (and the previous version's messages with versions), and the one
validator of a message (and of a thinking switch) read from outside, which chat files
(ezchat.storage.chatfile) use too.

Data to import is hostile: every problem is one line naming the field and the fix, and a
chat is imported in one transaction, so nothing is half-imported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import utf8
from ..chat.reasoning import parse_thinking, thinking_setting
from ..chat.roles import normalize_role
from ..chat.tree import Made, Node, Origin, Tree
from ..errors import EzChatError, StoreError
from .markdown import markdown_from_export
from .messages import MessageRows
from .nodes import default_origin
from .schema import DEFAULT_TITLE, SETTINGS

EXPORT_KIND = "ezchat-chat"
# 2: a chat's whole tree (``nodes``, ``active``); 1: its messages, each with its versions
EXPORT_VERSION = 2


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
        """The chat as plain data, its whole tree (no token ids or state): ``import_json``
        reads it back."""
        summary = self.chat(chat_id)
        return export_data(
            self.load_tree(chat_id),
            summary.title,
            self.chat_settings(chat_id),
            summary.created.isoformat(),
            summary.updated.isoformat(),
        )

    def export_markdown(self, chat_id: int) -> str:
        """The chat for reading: a title, its settings, then the messages of its active path."""
        return markdown_from_export(self.export_json(chat_id))

    def import_json(self, data: dict[str, Any] | str) -> int:
        """A new chat from ``export_json`` data (a dict or its JSON text, this version's or
        the one before: messages with versions); returns its id."""
        title, settings, created, tree = checked_export(data)
        with self._writing() as conn:
            now = time.time()
            cursor = conn.execute(
                f"INSERT INTO chats (title, created, updated, {', '.join(SETTINGS)}) "
                f"VALUES (?, ?, ?, {', '.join('?' * len(SETTINGS))})",
                (title, created or now, now, *(settings.get(key, "") for key in SETTINGS)),
            )
            chat_id = int(cursor.lastrowid)
            for node in tree.walk():
                message = node.message or {}
                self._insert_node(
                    conn,
                    chat_id,
                    node.id,
                    node.parent.id if node.parent is not None else 0,
                    node.role,
                    node.content,
                    node.origin,
                    message.get("reasoning", ""),
                    bookmarked=node.bookmarked,
                    created=created or now,
                    chosen=node.chosen.id if node.chosen is not None else 0,
                )
            conn.execute("UPDATE chats SET active_leaf = ? WHERE id = ?", (tree.active.id, chat_id))
            return chat_id


def export_data(
    tree: Tree, title: str, settings: dict[str, str], created: str, updated: str
) -> dict[str, Any]:
    """A chat's tree and settings in the export's shape: every node with its parent's id,
    and the end of the active path (``active``)."""
    return {
        "kind": EXPORT_KIND,
        "version": EXPORT_VERSION,
        "title": title,
        "created": created,
        "updated": updated,
        "settings": settings,
        "nodes": [_exported(node) for node in sorted(tree.walk(), key=lambda n: n.id)],
        "active": tree.active.id,
    }


def _exported(node: Node) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": node.id,
        "parent": node.parent.id if node.parent is not None else 0,
        "role": node.role,
        "content": node.content,
        "origin": node.origin.encode(),
    }
    reasoning = (node.message or {}).get("reasoning", "")
    if reasoning:
        data["reasoning"] = reasoning
    if node.chosen is not None:
        data["chosen"] = node.chosen.id
    if node.bookmarked:
        data["bookmarked"] = True
    return data


def tree_from_messages(messages: list[CheckedMessage]) -> Tree:
    """The tree of a chat kept as messages with versions (a version 1 export), as the v5
    migration makes it: each version a node, the messages after one under its shown version."""
    tree = Tree()
    for message in messages:
        parent, shown = tree.active, None
        for index, (text, reasoning) in enumerate(
            zip(message.versions, message.reasonings, strict=True)
        ):
            data = {"role": message.role, "content": text}
            if reasoning:
                data["reasoning"] = reasoning
            origin = Origin(Made.VERSION) if index else default_origin(message.role)
            node = tree.add(parent, data, origin, activate=False)
            if index == message.current:
                shown = node
        tree.switch_to(shown)
    return tree


def tree_from_nodes(raw: Any, active: Any, bad: Callable[[str, str], StoreError]) -> Tree:
    """The tree of a version 2 export's ``nodes``, checked: each a message with an ``id`` and
    the ``parent`` it hangs under (0: the top, else a node listed before it). Nodes are
    numbered again in the order listed."""
    if not isinstance(raw, list):
        raise bad("'nodes'", "must be a list")
    tree, numbers, chosen = Tree(), {0: 0}, {}
    for place, item in enumerate(raw, start=1):
        where = f"node {place}"
        message = check_message(item, f"chat import: {where}", StoreError).plain()
        node_id, parent = item.get("id"), item.get("parent", 0)
        if not _is_int(node_id) or node_id in numbers:
            raise bad(f"{where} 'id'", "must be a whole number above 0 used by no other node")
        if not _is_int(parent) or parent not in numbers:
            raise bad(f"{where} 'parent'", "must be 0 or the id of a node listed before it")
        origin, marked = item.get("origin", "message"), item.get("bookmarked", False)
        if not isinstance(origin, str) or not isinstance(marked, bool):
            raise bad(where, "needs 'origin' as a string and 'bookmarked' as true or false")
        node = tree.add(
            tree.nodes[numbers[parent]],
            message,
            Origin.decode(origin),
            activate=False,
            bookmarked=marked,
        )
        numbers[node_id] = node.id
        if "chosen" in item:
            chosen[node.id] = item["chosen"]
    for node_id, child in chosen.items():
        picked = tree.nodes.get(numbers.get(child, -1)) if _is_int(child) else None
        if picked is None or picked.parent is not tree.nodes[node_id]:
            raise bad(f"'chosen' of node id {child}", "must be the id of one of its children")
        tree.nodes[node_id].chosen = picked
    if not _is_int(active) or active not in numbers:
        raise bad("'active'", "must be 0 or the id of a node")
    tree.truncate_to(tree.nodes[numbers[active]])
    return tree


# The dates a chat may have been made on: every one of them shows as a local date and time.
_FIRST_TIME = 0.0
_LAST_TIME = datetime(9999, 1, 1, tzinfo=UTC).timestamp()


def _checked_time(text: str, bad: Callable[[str, str], StoreError]) -> float:
    """An export's ``created`` as a timestamp; a date before 1970 or past 9998 is refused."""
    try:
        moment = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        moment = None
    if moment is None or not _FIRST_TIME <= moment <= _LAST_TIME:
        raise bad("'created'", "is not an ISO date from 1970 to 9998")
    return moment


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def checked_export(
    data: dict[str, Any] | str,
) -> tuple[str, dict[str, str], float | None, Tree]:
    """Validate ``export_json`` data; every problem names the field and what it should be."""

    def bad(where: str, what: str) -> StoreError:
        return StoreError(f"chat import: {where} {what}; fix the file or export the chat again")

    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise bad("the text", f"is not JSON ({exc})") from None
        except RecursionError:
            raise bad("the text", "nests too deeply to be a chat export") from None
    if not isinstance(data, dict):
        raise bad("the data", "must be a JSON object from an ezchat chat export")
    if data.get("kind", EXPORT_KIND) != EXPORT_KIND:
        raise bad("'kind'", f"is {data.get('kind')!r}, not {EXPORT_KIND!r}")
    # without a version, the shape tells: a tree of nodes, or the earlier list of messages
    version = data.get("version", EXPORT_VERSION if "nodes" in data else 1)
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
        created = _checked_time(data["created"], bad)
    if version >= 2:
        return (
            title,
            settings,
            created,
            tree_from_nodes(data.get("nodes", []), data.get("active", 0), bad),
        )
    raw_messages = data.get("messages", [])
    if not isinstance(raw_messages, list):
        raise bad("'messages'", "must be a list")
    messages = [
        check_message(item, f"chat import: message {number}", StoreError)
        for number, item in enumerate(raw_messages, start=1)
    ]
    return title, settings, created, tree_from_messages(messages)
