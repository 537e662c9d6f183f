"""The config file's settings for the app ([keymap] and theme), checked against what the app
has: an action id, a key or a theme name that does not exist would otherwise do nothing, and
the user would not know why their binding or theme never took effect."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import REPLACED_KEYS, Keys, key_to_character

from ..settings.userfiles import where

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
# The names Textual gives keys that are not characters (escape, f1 ... f24, pageup, ...);
# "<any>" and the like are Textual's own markers, not keys.
_NAMED_KEYS = frozenset(
    name for key in Keys if not (name := key.value.rpartition("+")[2]).startswith("<")
) | frozenset(REPLACED_KEYS)
KEY_EXAMPLES = '"ctrl+r", "f6", "escape" or "a", several separated by commas'


def binding_ids() -> list[str]:
    """Every binding id of the app, its screens and its widgets: what [keymap] may name."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")  # screens load lazily
    ids = {
        binding.id
        for node in _subclasses(DOMNode)
        if node.__module__.startswith(f"{__package__}.")
        for binding in node.__dict__.get("BINDINGS", [])
        if isinstance(binding, Binding) and binding.id
    }
    return sorted(ids)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def is_key(key: str) -> bool:
    """True for a key Textual can bind: modifiers, then a character or a named key."""
    *modifiers, name = key.strip().split("+")
    if not name or any(modifier not in MODIFIERS for modifier in modifiers):
        return False
    if len(name) == 1:
        return name.isprintable() and not name.isspace()
    return name in _NAMED_KEYS or key_to_character(name) is not None


def check_keymap(
    keymap: dict[str, str], path: Path, ids: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """The entries that can be used, and one line for each that cannot (its file, line and
    key, and what is allowed)."""
    known = set(ids)
    usable: dict[str, str] = {}
    problems: list[str] = []
    for action, keys in keymap.items():
        here = f"{where(path, action)}: [keymap] {action}"
        if action not in known:
            problems.append(
                f"{here}: no action has this id, so it is ignored; the ids are "
                f"{', '.join(sorted(known))}"
            )
            continue
        bad = [key.strip() for key in keys.split(",") if not is_key(key)]
        if bad:
            problems.append(
                f"{here} = {keys!r}: {', '.join(repr(key) for key in bad)} is not a key, so "
                f"the binding is ignored; write keys like {KEY_EXAMPLES}"
            )
            continue
        usable[action] = keys
    return usable, problems


def theme_problem(theme: str, path: Path, themes: Iterable[str]) -> str:
    return (
        f"{where(path, 'theme')}: theme {theme!r} does not exist, so the default is used; "
        f"choose one of {', '.join(sorted(themes))}"
    )
