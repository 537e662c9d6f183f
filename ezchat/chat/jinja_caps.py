"""What a chat template can take, probed as llama.cpp's ``jinja::caps_get`` probes it.

llama.cpp renders a template with small sample chats and watches which values the template
reads: a system message's content (else the template has no system role), tool calls and their
arguments as objects, content as a string or as typed parts. The messages are then adapted to
what it found (see ``jinja_render.prepare_messages``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from .jinja_engine import (
    _bounded,
    _OutputTooLarge,
    _RenderExpired,
    _run,
    _Tracked,
    _TrackedList,
    _TrackedText,
    compile_template,
)


def _track(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _Tracked({key: _track(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_track(item) for item in value]
    return value


@dataclass(frozen=True)
class Capabilities:
    system_role: bool = True
    tool_calls: bool = True
    object_arguments: bool = False
    string_content: bool = True
    typed_content: bool = False


_PROBE_TOOLS = [
    {
        "name": "tool",
        "type": "function",
        "function": {
            "name": "tool1",
            "description": "Tool description",
            "parameters": {
                "type": "object",
                "properties": {"arg": {"type": "string", "description": "Arg description"}},
                "required": ["arg"],
            },
        },
    }
]


def _tool_chat(arguments: Any) -> list[dict[str, Any]]:
    call = {
        "id": "call00001",
        "type": "function",
        "function": {"name": "tool1", "arguments": arguments},
    }
    return [
        {"role": "user", "content": "User message"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "Tool response", "tool_call_id": "call00001"},
        {"role": "assistant", "content": "The tool response was 'tool response'"},
        {"role": "user", "content": "User message"},
    ]


def _probe(
    template: jinja2.Template, messages: list[Any], tools: list[Any] | None = None
) -> tuple[bool, str]:
    context = {
        "messages": messages,
        "tools": tools if tools is not None else [],
        "bos_token": "",
        "eos_token": "",
        "add_generation_prompt": True,
    }
    try:
        return True, _run(template, context, None)
    except (_RenderExpired, _OutputTooLarge, MemoryError):
        raise
    except Exception:  # a probe that fails tells something too
        return False, ""


@functools.lru_cache(maxsize=64)
def _capabilities(source: str) -> Capabilities:
    template = compile_template(source)
    marker = _TrackedText("STRING_MARKER")
    ok, rendered = _probe(template, [_Tracked(role="user", content=marker)])
    used_as_list = marker.used_as_list
    typed = used_as_list
    string = ok and not (used_as_list and "STRING_MARKER" not in rendered)
    if not typed:
        # llama.cpp's second probe: an empty list of parts, read as a list by templates that
        # check for a string first and take parts otherwise.
        parts = _TrackedList()
        ok_typed, _ = _probe(template, [_Tracked(role="user", content=parts)])
        typed = ok_typed and parts.used_as_list
    system = _track(
        [
            {"role": "system", "content": "System message"},
            {"role": "user", "content": "User message"},
        ]
    )
    _probe(template, system)
    caps = {
        "system_role": "content" in system[0].used,
        "string_content": string,
        "typed_content": typed,
    }

    messages, tools = _track(_tool_chat({"arg": "value"})), _track(_PROBE_TOOLS)
    ok, _ = _probe(template, messages, tools)
    if ok:
        calls_used = "tool_calls" in messages[1].used
        caps["tool_calls"] = calls_used
        if calls_used:
            arguments = dict.__getitem__(dict.__getitem__(messages[1], "tool_calls")[0], "function")
            caps["object_arguments"] = "arg" in dict.__getitem__(arguments, "arguments").used
    if not caps.get("object_arguments"):
        messages, tools = _track(_tool_chat('{"arg": "value"}')), _track(_PROBE_TOOLS)
        ok, _ = _probe(template, messages, tools)
        caps["tool_calls"] = ok and "tool_calls" in messages[1].used
    return Capabilities(**caps)


def capabilities(source: str, what: str = "chat template") -> Capabilities:
    """What llama.cpp would find that the template can take (cached per template)."""
    return _bounded(lambda: _capabilities(source), what)
