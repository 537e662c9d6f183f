"""A saved row of ``nodes`` read into a chat's Tree (ezchat.storage.nodes loads the rows).

Rows are written by ezchat, but a file can be damaged or edited by hand: each field that is not
what ezchat wrote is a note for the user and the rest of the chat still opens. A role or text
that is not one leaves the message (and those under it) out; a damaged token-id or token_info
blob, or a time, is dropped and worked out again.
"""

from __future__ import annotations

from typing import Any

from ..chat.roles import normalize_role
from ..chat.tree import Node, Origin, Tree
from .schema import unpack_tokens, unpacked_or_noted
from .tokeninfo import unpack_token_info


def node_from_row(tree: Tree, chat_id: int, row: tuple, notes: list[str]) -> Node | None:
    """The node of ``row`` (the columns of ``nodes._COLUMNS``) added under its parent in
    ``tree``, or None where it is left out; what is wrong with it goes in ``notes``."""
    node_id, parent_id, _, role, content, reasoning, tokens, info, origin, marked, made = row
    parent = tree.nodes[parent_id]
    try:
        role = normalize_role(str(role))
    except ValueError:
        notes.append(
            f"chat {chat_id}: saved message {node_id} has an unknown role {role!r}; it and "
            "the messages under it are left out (the rest of the chat opens)"
        )
        return None
    if not isinstance(content, str) or not isinstance(reasoning, str | None):
        notes.append(
            f"chat {chat_id}: saved message {node_id} is damaged (its text is not text); "
            "it and the messages under it are left out"
        )
        return None
    where = f"chat {chat_id}: message {node_id}"
    message: dict[str, Any] = {"role": role, "content": content}
    if reasoning:
        message["reasoning"] = reasoning
    return tree.add(
        parent,
        message,
        Origin.decode(origin),
        id=node_id,
        activate=False,
        tokens=unpacked_or_noted(unpack_tokens, tokens, where, notes),
        token_info=unpacked_or_noted(unpack_token_info, info, where, notes),
        bookmarked=bool(marked),
        created=made if isinstance(made, int | float) else 0.0,  # a damaged time: none
    )
