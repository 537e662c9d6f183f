"""Who speaks in a chat: one table of the roles, with the names chat templates use for them and
the labels an export heads them with. The Thread, the formats and storage read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Role:
    name: str  # ezchat's name: in a Thread's messages and in saved chats
    template_name: str  # the name chat templates and OpenAI-style messages use
    label: str  # the heading of its messages in an exported chat


ROLE_TABLE: dict[str, Role] = {
    "system": Role("system", "system", "System"),
    "user": Role("user", "user", "User"),
    "bot": Role("bot", "assistant", "Bot"),
}
ROLES = tuple(ROLE_TABLE)
# Other names a user or a file may give a role.
ROLE_ALIASES = {"assistant": "bot", "model": "bot"}
# A role, by ezchat's name or a template's, to the template's name (what formats render).
TEMPLATE_NAME_OF = {
    **{role.name: role.template_name for role in ROLE_TABLE.values()},
    **{role.template_name: role.template_name for role in ROLE_TABLE.values()},
}


def normalize_role(role: str) -> str:
    """ezchat's name for ``role`` (any case, or an alias); ValueError names the choices."""
    lowered = role.strip().lower()
    lowered = ROLE_ALIASES.get(lowered, lowered)
    if lowered not in ROLE_TABLE:
        raise ValueError(f"unknown role {role!r}: use 'system', 'user' or 'bot'")
    return lowered


def template_name(role: str) -> str:
    """The chat template's name for one of ezchat's roles (others pass through)."""
    return ROLE_TABLE[role].template_name if role in ROLE_TABLE else role
