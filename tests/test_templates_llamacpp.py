"""Chat templates rendered as llama.cpp renders them.

The cases come from the llama.cpp that llama-cpp-python vendors, read at test time: the 35
Jinja cases of its ``tests/test-chat-template.cpp`` (expected outputs in that file), and the
files in its ``models/templates``, whose reference is llama.cpp itself: ``llama-server
--jinja --chat-template-file FILE`` answers ``POST /apply-template`` with the prompt it renders.
"""

from __future__ import annotations

import concurrent.futures
import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from llamacpp_cases import jinja_cases, templates_dir
from servers import start_template_server, stop_server

from ezchat.chat import jinja_render

CASES = jinja_cases()
TEMPLATE_FILES = sorted(templates_dir().glob("*.jinja"))
PARALLEL_SERVERS = 4

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "the city"}},
                "required": ["city"],
            },
        },
    }
]
CHAT = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Hello there!"},
    {"role": "assistant", "content": "Hi. What do you need?"},
    {"role": "user", "content": "What is the weather in Paris?"},
]
TOOL_CHAT = [
    *CHAT,
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call00001",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "content": '{"sky": "clear"}', "tool_call_id": "call00001"},
    {"role": "assistant", "content": "Clear skies in Paris."},
    {"role": "user", "content": "Thanks."},
]
# Replies that reasoned, as an OpenAI client hands them back to llama-server (and as a Thread
# hands them to a template): each template decides which turns keep their reasoning.
REASONING_CHAT = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Hello there!"},
    {
        "role": "assistant",
        "content": "Hi. What do you need?",
        "reasoning_content": "The user greets me. A short greeting back will do.",
    },
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4.", "reasoning_content": "Two plus two is four."},
    {"role": "user", "content": "Thanks."},
]
# name -> (messages, with tools); the tool ones only where the template reads tool calls
CONVERSATIONS = {
    "chat": (CHAT, False),
    "chat+tools": (CHAT, True),
    "tool calls": (TOOL_CHAT, True),
    "reasoning": (REASONING_CHAT, False),
    # a new chat: the prompt for a bot that speaks first (Qwen's templates read messages[0])
    "empty": ([], False),
}
# The files whose templates read a reply's reasoning (the others must leave it out, as they do).
READS_REASONING = [path for path in TEMPLATE_FILES if "reasoning_content" in path.read_text()]


def test_reads_all_llamacpp_cases():
    assert len(CASES) == 35
    assert len(TEMPLATE_FILES) == 70
    assert len(READS_REASONING) == 29


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_llamacpp_jinja_case(case):
    rendered = jinja_render.render(
        case.template, case.conversation, bos_token=case.bos_token, eos_token=case.eos_token
    )
    assert rendered == case.expected


def _reference(model_path: Path, template: Path, log: Path) -> dict:
    """llama-server's prompts for each conversation, with the caps it found and its tokens."""
    port, server = start_template_server(model_path, template, log)
    try:
        props = httpx.get(f"http://127.0.0.1:{port}/props", timeout=30).json()
        answers = {"props": props, "prompts": {}, "started": datetime.now()}
        for name, (messages, with_tools) in CONVERSATIONS.items():
            if name == "tool calls" and not props["chat_template_caps"]["supports_tool_calls"]:
                continue
            body = {"messages": messages, **({"tools": TOOLS} if with_tools else {})}
            # llama-server turns thinking on only where its parser finds a reasoning block;
            # pinned on here, as ezchat renders by default (llama.cpp's inputs default).
            body["chat_template_kwargs"] = {"enable_thinking": True}
            reply = httpx.post(f"http://127.0.0.1:{port}/apply-template", json=body, timeout=30)
            answers["prompts"][name] = (
                reply.json()["prompt"] if reply.status_code == 200 else ("error", reply.text)
            )
        answers["finished"] = datetime.now()
        return answers
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def llama_server_prompts(model_path, tmp_path_factory):
    """Every template file through llama-server, a few servers at a time (each loads the
    default model in about 0.2 s, so starting one per file stays cheap)."""
    logs = tmp_path_factory.mktemp("llama-server")
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_SERVERS) as pool:
        futures = {
            path.name: pool.submit(_reference, model_path, path, logs / f"{path.stem}.log")
            for path in TEMPLATE_FILES
        }
        return {name: future.result() for name, future in futures.items()}


def _ours(source: str, name: str, reference: dict, model) -> str | tuple:
    messages, with_tools = CONVERSATIONS[name]
    props = reference["props"]
    attempts = []
    # llama.cpp prints today's date in some templates: render at its start and end times.
    for now in (reference["started"], reference["finished"] + timedelta(seconds=1)):
        try:
            attempts.append(
                jinja_render.render(
                    source,
                    messages,
                    bos_token=props["bos_token"],
                    eos_token=props["eos_token"],
                    tools=TOOLS if with_tools else None,
                    strip_bos=model.add_bos,
                    now=now,
                )
            )
        except Exception as exc:  # the reference may refuse the template too
            attempts.append(("error", repr(exc)))
    return attempts


@pytest.mark.parametrize(
    "template",
    TEMPLATE_FILES,
    ids=[path.name for path in TEMPLATE_FILES],
)
def test_template_file_renders_as_llama_server(template, llama_server_prompts, model):
    reference = llama_server_prompts[template.name]
    assert reference["props"]["bos_token"] == model.token_text(model.bos_token)
    source = template.read_text(encoding="utf-8")
    caps = jinja_render.capabilities(source)
    expected_caps = reference["props"]["chat_template_caps"]
    assert caps.system_role == expected_caps["supports_system_role"]
    assert caps.tool_calls == expected_caps["supports_tool_calls"]
    assert reference["prompts"], "llama-server rendered nothing"
    for name, expected in reference["prompts"].items():
        attempts = _ours(source, name, reference, model)
        if isinstance(expected, tuple):  # llama.cpp refused it: so must ezchat
            assert all(isinstance(attempt, tuple) for attempt in attempts), (name, expected)
            continue
        assert expected in attempts, (name, json.dumps(expected)[:2000], attempts[0])


def test_the_reasoning_conversation_is_kept_by_some_templates_and_dropped_by_others(
    llama_server_prompts,
):
    """Which turns keep their reasoning is the template's choice, so the conversation must show
    both: DeepSeek V4 keeps every turn's (llama-server's default preserve_reasoning turns its
    drop_thinking off), the R1 distills drop it (each file's match is checked above)."""

    def kept(name: str) -> bool:
        prompt = llama_server_prompts[name]["prompts"]["reasoning"]
        return REASONING_CHAT[2]["reasoning_content"] in prompt

    assert kept("deepseek-ai-DeepSeek-V4.jinja")
    assert not kept("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja")
    # SmolLM3's template never reads a reply's reasoning
    assert not kept("HuggingFaceTB-SmolLM3-3B.jinja")
