"""The template families llama.cpp renders with their own message adjustments.

``common_chat_try_specialized_template`` (llama.cpp's ``common/chat.cpp``) tells a few
template families apart by strings in their source, first match wins, and some of their
handlers (``common/parsers/*.cpp``) reshape the messages before the template sees them:
gpt-oss and LFM2 read a reply's reasoning as ``thinking``, Ministral 3 as a ``thinking`` block
in typed content, the older Gemma 4 templates want a tool exchange folded into one assistant
turn, DeepSeek V4 orders tool results by their calls. This module ports those steps, so that
``jinja_render`` hands each template what llama.cpp hands it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

_Messages = list[dict[str, Any]]


def _all(*needles: str) -> Callable[[str], bool]:
    return lambda source: all(needle in source for needle in needles)


# llama.cpp's detection, in its order (a template that matches an earlier family never reaches
# a later one, so the families without an adjustment are listed too).
_DETECTION: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("ministral3", lambda s: _all("[SYSTEM_PROMPT]", "[TOOL_CALLS]", "[ARGS]")(s)
        and "[CALL_ID]" not in s),
    ("gpt-oss", _all("<|channel|>")),
    ("muse-glimmer", _all("<atem:function_calls>", "<|eom|>")),
    ("functionary-v3.2", _all(">>>all", ">>>${recipient}")),
    ("kimi-k2", _all("<|tool_calls_section_begin|>", "<|tool_call_begin|>")),
    ("kimi-k3", _all("<|open|>", "<|close|>", "<|end_of_msg|>")),
    ("ling3", _all("<role>ASSISTANT</role>", "<arg_key>")),
    ("cohere2moe", _all("<|START_TEXT|>", "<|START_ACTION|>")),
    ("lfm2", _all("<|tool_list_start|>", "<|tool_list_end|>")),
    ("lfm2.5", lambda s: "List of tools: [" in s and "<|tool_list_start|>" not in s),
    ("gigachat-v3", lambda s: _all("<|role_sep|>", "<|message_sep|>")(s)
        and "<|function_call|>" not in s),
    ("minimax-m3", _all("]<]minimax[>[", "<tool_call>", "<invoke name=")),
    ("deepseek-v3.2", lambda s: _all("dsml_token", "DSML")(s)
        and ("function_calls" in s or "tool_calls" in s)),
    ("gemma4", _all("'<|tool_call>call:'")),
)  # fmt: skip


def family(source: str) -> str | None:
    """The specialized family llama.cpp picks for a template, or None (its generic path)."""
    return next((name for name, matches in _DETECTION if matches(source)), None)


def needs_trimmed_content(source: str) -> bool:
    """StepFun's templates get every content and reasoning trimmed first (llama.cpp's
    ``trim_all_content``: left-over whitespace drove that model into reasoning loops)."""
    return "You have access to the following functions in JSONSchema format" in source


def adjust(source: str, messages: _Messages) -> _Messages:
    """The messages as the family's handler reshapes them, after llama.cpp's generic steps."""
    name = family(source)
    if name == "ministral3":
        return [_ministral3_message(message) for message in messages]
    if name == "gpt-oss":
        return [_with_thinking(message, drop_content_of_calls=True) for message in messages]
    if name in ("lfm2", "lfm2.5"):
        return [_with_thinking(message, drop_content_of_calls=False) for message in messages]
    if name == "deepseek-v3.2" and "function_calls" not in source:  # V4 names it tool_calls
        return _tool_results_in_call_order(messages)
    if name == "gemma4" and "{#- OpenAI Chat Completions:" not in source:
        return _gemma4_tool_turns(messages)  # only the older Gemma 4 templates need it
    return messages


def adjust_prompt(source: str, prompt: str, add_generation_prompt: bool) -> str:
    """Gemma 4: a prompt that ends on a closed model turn (content and a tool call) gets the
    next model turn opened, as ``common_chat_params_init_gemma4`` does."""
    if family(source) == "gemma4" and add_generation_prompt and prompt.endswith("<turn|>\n"):
        return prompt + "<|turn>model\n"
    return prompt


def _with_thinking(message: dict[str, Any], drop_content_of_calls: bool) -> dict[str, Any]:
    """gpt-oss and LFM2 read the reasoning as ``thinking``; gpt-oss then leaves a tool-calling
    turn's content out."""
    if not isinstance(message.get("reasoning_content"), str):
        return message
    adjusted = {**message, "thinking": message["reasoning_content"]}
    if drop_content_of_calls and adjusted.get("tool_calls"):
        adjusted.pop("content", None)
    return adjusted


def _ministral3_message(message: dict[str, Any]) -> dict[str, Any]:
    """System and assistant content as typed blocks: the reasoning as a ``thinking`` block
    first, then the text (``common_chat_params_init_ministral_3``)."""
    if message["role"] not in ("system", "assistant"):
        return message
    blocks: list[Any] = []
    if isinstance(message.get("reasoning_content"), str):
        blocks.append({"type": "thinking", "thinking": message["reasoning_content"]})
    content = message.get("content")
    if isinstance(content, str):
        blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        blocks.extend(content)
    adjusted = {key: value for key, value in message.items() if key != "reasoning_content"}
    adjusted["content"] = blocks
    return adjusted


def _tool_results_in_call_order(messages: _Messages) -> _Messages:
    """DeepSeek V4 renders a run of user and tool messages as one user block, its tool results
    in the order of the calls that asked for them (``deepseek_v4_sort_tool_results``)."""
    adjusted = list(messages)
    call_order: dict[str, int] = {}
    index = 0
    while index < len(adjusted):
        role = adjusted[index].get("role")
        if role == "assistant" and adjusted[index].get("tool_calls"):
            calls = adjusted[index]["tool_calls"]
            call_order = {call["id"]: n for n, call in enumerate(calls) if call.get("id")}
            index += 1
            continue
        if role not in ("user", "tool"):
            index += 1
            continue
        end = index
        while end < len(adjusted) and adjusted[end].get("role") in ("user", "tool"):
            end += 1
        positions = [p for p in range(index, end) if adjusted[p].get("role") == "tool"]
        if len(positions) > 1 and call_order:
            results = sorted(
                (adjusted[p] for p in positions),
                key=lambda m: call_order.get(m.get("tool_call_id", ""), 0),
            )  # sorted() is stable, as llama.cpp's std::stable_sort
            for position, result in zip(positions, results, strict=True):
                adjusted[position] = result
        index = end
    return adjusted


def _gemma4_tool_turns(messages: _Messages) -> _Messages:
    """assistant(tool calls) → tool results → assistant(answer) become one assistant message
    with ``tool_calls``, ``tool_responses`` and the answer (``convert_tool_responses_gemma4``)."""
    result: _Messages = []
    index = 0
    while index < len(messages):
        message = messages[index]
        if message.get("role") != "assistant" or not message.get("tool_calls"):
            result.append(message)
            index += 1
            continue
        calls = list(message["tool_calls"])
        index += 1
        responses = []
        while index < len(messages) and messages[index].get("role") == "tool":
            responses.append(_gemma4_response(messages[index], calls, len(responses)))
            index += 1
        merged: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
        if responses:
            merged["tool_responses"] = responses
        if index < len(messages) and messages[index].get("role") == "assistant":
            following = messages[index]
            if not following.get("tool_calls") and following.get("content"):
                merged["content"] = following["content"]
                index += 1
        if isinstance(message.get("reasoning_content"), str):
            merged["reasoning_content"] = message["reasoning_content"]
        result.append(merged)
    return result


def _gemma4_response(tool: dict[str, Any], calls: list[Any], position: int) -> dict[str, Any]:
    """One tool result, its content parsed as JSON where it is JSON, named by its call."""
    response: Any = None
    if "content" in tool:
        response = tool["content"]
        if isinstance(response, str):
            with contextlib.suppress(ValueError):  # not JSON: the text as it is
                response = json.loads(response)
    name = ""
    if position < len(calls):
        name = calls[position].get("function", {}).get("name", "")
    return {"name": name or tool.get("tool_call_id", ""), "response": response}
