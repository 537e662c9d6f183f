"""Chat templates rendered as llama.cpp renders them.

llama.cpp (``common/chat.cpp``) does not hand a template the messages as they come: it probes
what the template can take (``jinja_caps``) and adapts the messages. A system message the
template ignores is folded into the next message with "\\n", tool-call messages get an empty
content, string arguments become objects, content becomes typed parts where only those are
read. Its runtime strips a leading BOS that the tokenizer adds anyway. This module does the
same with Python's Jinja (``jinja_engine``, bounded in time and size), so that a GGUF's
template gives the prompt llama.cpp would give.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .. import utf8
from ..errors import InvalidTextError
from . import jinja_families
from .jinja_caps import Capabilities, capabilities
from .jinja_engine import (
    DEFAULT_RENDER_MEMORY_MB,
    DEFAULT_RENDER_SECONDS,
    MAX_RENDER_CHARS,
    ChatTemplateError,
    _bounded,
    _run,
    compile_template,
    render_memory_mb,
    render_timeout,
    set_render_memory,
    set_render_timeout,
)

__all__ = [
    "DEFAULT_RENDER_MEMORY_MB",
    "DEFAULT_RENDER_SECONDS",
    "MAX_RENDER_CHARS",
    "Capabilities",
    "ChatTemplateError",
    "capabilities",
    "compile_template",
    "prepare_messages",
    "render",
    "render_memory_mb",
    "render_timeout",
    "set_render_memory",
    "set_render_timeout",
]


# The characters C's isspace() takes for whitespace (Python's str.strip() takes more).
_C_SPACE = " \t\n\v\f\r"
# llama-server's default ``preserve_reasoning`` (its --reasoning-preserve, on unless turned off)
# reaches templates under these names; templates that keep earlier turns' reasoning read them.
_PRESERVED_REASONING = {
    "preserve_reasoning": True,
    "preserve_thinking": True,
    "clear_thinking": False,
    "truncate_history_thinking": False,
    "drop_thinking": False,
}


# --- the messages as llama.cpp hands them over --------------------------------------------------


def _message_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """llama.cpp's ``common_chat_msg::to_json_oaicompat``: empty fields left out, arguments as
    JSON text."""
    result: dict[str, Any] = {"role": message["role"], "content": message.get("content") or ""}
    for key in ("reasoning_content", "name", "tool_call_id"):
        if message.get(key):
            result[key] = message[key]
    if message.get("tool_calls"):
        calls = []
        for call in message["tool_calls"]:
            function = call["function"]
            arguments = function.get("arguments", "")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
            converted = {
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
            if call.get("id"):
                converted["id"] = call["id"]
            calls.append(converted)
        result["tool_calls"] = calls
    return result


def _tools_json(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """llama.cpp's round trip of OpenAI tools: only a function's name, description and
    parameters reach the template, in that order."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "parameters": tool["function"].get("parameters", {}),
            },
        }
        for tool in tools
    ]


def prepare_messages(
    source: str, messages: Iterable[Mapping[str, Any]], caps: Capabilities
) -> list[dict[str, Any]]:
    """The messages adapted to the template, as ``common_chat_templates_apply_jinja`` does."""
    if jinja_families.needs_trimmed_content(source):
        messages = [_trimmed(message) for message in messages]
    prepared = [_message_json(message) for message in messages]
    if caps.typed_content and not caps.string_content:
        for message in prepared:
            if isinstance(message["content"], str):
                message["content"] = [{"type": "text", "text": message["content"]}]
    if "<|channel|>" not in source:  # gpt-oss keeps its developer role
        for message in prepared:
            if message["role"] == "developer":
                message["role"] = "system"
    if not caps.system_role and prepared and prepared[0]["role"] == "system":
        system = prepared.pop(0)
        if prepared:
            prepared[0]["content"] = f"{system['content']}\n{prepared[0]['content']}"
    if caps.object_arguments:
        for message in prepared:
            for call in message.get("tool_calls", []):
                arguments = call["function"]["arguments"]
                if isinstance(arguments, str):
                    call["function"]["arguments"] = json.loads(arguments)
    return jinja_families.adjust(source, prepared)


def _trimmed(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message with its content and reasoning trimmed as C's ``isspace`` trims."""
    trimmed = dict(message)
    for key in ("content", "reasoning_content"):
        if isinstance(trimmed.get(key), str):
            trimmed[key] = trimmed[key].strip(_C_SPACE)
    return trimmed


def render(
    source: str,
    messages: Iterable[Mapping[str, Any]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    tools: list[Mapping[str, Any]] | None = None,
    strip_bos: bool = False,
    strip_eos: bool = False,
    now: datetime | None = None,
    what: str = "chat template",
    prepared: bool = False,
    enable_thinking: bool = True,
    variables: Mapping[str, Any] | None = None,
) -> str:
    """The prompt llama.cpp renders from ``source`` for ``messages``.

    ``strip_bos``/``strip_eos``: the tokenizer adds BOS (EOS) itself, so the template's own
    copy at the start (end) is dropped, as llama.cpp's runtime does. ``prepared``: the messages
    went through ``prepare_messages`` already. ``variables``: more for the template, set per
    chat (``enable_thinking`` and its kin, see ezchat/chat/reasoning.py); they win over the defaults.
    """
    template = compile_template(source, what)
    if not prepared:
        messages = prepare_messages(source, messages, capabilities(source, what))
    context: dict[str, Any] = {
        "messages": list(messages),
        "bos_token": bos_token,
        "eos_token": eos_token,
        "enable_thinking": enable_thinking,
        **_PRESERVED_REASONING,
        **(variables or {}),
    }
    if context.get("reasoning_effort"):  # llama.cpp binds both names to the one effort
        context["reasoning_strength"] = context["reasoning_effort"]
    if tools:
        context["tools"] = _tools_json(tools)
    if add_generation_prompt:  # llama.cpp leaves it undefined otherwise
        context["add_generation_prompt"] = True
    text = _bounded(lambda: _run(template, context, now), what)
    found = utf8.problem(text)  # '\ud800' in a template: no terminal, file or tokenizer takes it
    if found:
        raise InvalidTextError(f"the chat template's output is not text: {found}")
    if strip_bos and bos_token and text.startswith(bos_token):
        text = text[len(bos_token) :]
    if strip_eos and eos_token and text.endswith(eos_token):
        text = text[: -len(eos_token)]
    return jinja_families.adjust_prompt(source, text, add_generation_prompt)
