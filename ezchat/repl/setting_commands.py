"""The ``!commands`` that change how the model is asked: the sampler (a preset, or one setting
at a time), the prompt format and the thinking switch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..chat import formats, samplers
from ..chat.reasoning import parse_thinking, thinking_label
from ..chat.samplers import FIELD_INFO
from ..errors import EzChatError

if TYPE_CHECKING:
    from .loop import Repl


def show_sampler(repl: Repl, arg: str) -> None:
    if arg:
        use_preset(repl, arg)
        return
    sampler = repl.thread.sampler
    repl.out.line(f"sampler {sampler.name}")
    for name, info in FIELD_INFO.items():
        repl.out.line(f"  {name} = {getattr(sampler, name)!r}  ({info.help})")


def set_sampler_value(repl: Repl, name: str, arg: str) -> None:
    """``!temp 0.7`` and the like: every sampler setting is a command of its own."""
    info = FIELD_INFO[name]
    if not arg:
        value = getattr(repl.thread.sampler, name)
        repl.out.line(f"{name} = {value!r}  ({info.help})")
        return
    try:
        value = samplers.parse_value(name, arg)
        repl.thread.sampler = repl.thread.sampler.replace(**{name: value})
    except ValueError as exc:
        repl.error(f"{exc}; {name} is unchanged")
        return
    repl.note(f"({name} = {value!r})")


def use_preset(repl: Repl, arg: str) -> None:
    if not arg:
        list_names(repl, samplers.available(), repl.thread.sampler.name, "preset NAME")
        return
    repl.thread.sampler = samplers.load(arg)
    repl.note(f"(sampler preset {repl.thread.sampler.name})")


def use_format(repl: Repl, arg: str) -> None:
    if not arg:
        list_names(repl, ["auto", *formats.available()], repl.thread.format.name, "format NAME")
        return
    repl.thread.set_format(arg)
    repl.show_format()


def think(repl: Repl, arg: str) -> None:
    thread = repl.thread
    if not arg:  # what it is now
        arg = thinking_label(thread.thinking)
    try:
        enabled = parse_thinking(arg)
    except ValueError as exc:
        raise EzChatError(str(exc)) from None
    repl.note(f"({thread.switch_thinking(enabled)})")


def list_names(repl: Repl, names: list[str], current: str, usage: str) -> None:
    marked = [f"[{n}]" if n == current else n for n in names]
    repl.out.line(" ".join(marked))
    repl.note(f"(the current one is in brackets; {usage} switches)")
