"""Prompt and PromptCollection: Jinja templates (shipped and the user's), ids, context keys."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import ezchat as ez
from ezchat.runners import Prompt, PromptCollection, available_templates, find_template
from ezchat.runners.prompts import SHIPPED_DIR
from ezchat.settings import paths


def test_shipped_templates_are_listed_and_found() -> None:
    templates = available_templates()
    assert {"default", "plain", "question_context", "chatml.raw"} <= set(templates)
    assert find_template("default") == SHIPPED_DIR / "default.j2"
    assert find_template("default.j2") == SHIPPED_DIR / "default.j2"


def test_default_template_lists_the_context() -> None:
    prompt = Prompt("Be brief.", "What is the capital?", context={"country": "France"})
    assert prompt.reformated == "What is the capital?\n\nProvided context:\ncountry: France"
    assert prompt.raw is False
    assert Prompt(None, "Hi").reformated == "Hi"
    uuid.UUID(prompt.id)  # a real UUID unless given


def test_create_prompts_matches_lists_and_numbers_conversations() -> None:
    collection = PromptCollection.create_prompts(
        sys_prompts="You are a pirate.",
        user_prompts=["User prompt 1", "User prompt 2"] * 5,
        contexts=[{"key1": "value1"}, {"key2": "value2"}] * 5,
        meta_datas=[{"meta": "data1"}, {"meta": "data2"}] * 5,
        model_name="SmolLM2",
        template_name="plain.j2",
    )
    assert len(collection) == 10
    assert collection.model_name == "SmolLM2"
    assert [p.conversation_id for p in collection] == list(range(10))
    assert len({p.id for p in collection}) == 10
    assert all(p.sys_prompt == "You are a pirate." for p in collection)
    assert collection[1].context == {"key2": "value2"}
    assert collection[1].meta_data == {"meta": "data2"}
    assert collection.user_prompts[:2] == ["User prompt 1", "User prompt 2"]
    assert collection[0].reformated == "User prompt 1"  # plain ignores the context


def test_mismatched_lists_name_the_argument() -> None:
    with pytest.raises(ValueError, match="contexts has 1 items but there are 2 user prompts"):
        PromptCollection.create_prompts(None, ["a", "b"], contexts=[{"k": "v"}])
    shared = PromptCollection.create_prompts(["s1", "s2"], ["a", "b"], contexts={"k": "v"})
    assert [p.sys_prompt for p in shared] == ["s1", "s2"]
    assert all(p.context == {"k": "v"} for p in shared)


def test_a_user_template_sees_context_keys_and_overrides_shipped(isolated_home: Path) -> None:
    folder = paths.user_dir("templates")
    folder.mkdir(parents=True)
    (folder / "custom.j2").write_text(
        "{{ user_prompt }}\nImportant Context 1: {{ key1 }}\nImportant Context 2: {{ key2 }}\n"
        "Meta: {{ meta_data.meta }} (conversation {{ conversation_id }})"
    )
    (folder / "plain.j2").write_text("USER SAYS: {{ user_prompt }}")
    collection = PromptCollection.create_prompts(
        "sys",
        ["first", "second"],
        contexts=[{"key1": "value1"}, {"key2": "value2"}],
        meta_datas=[{"meta": "m1"}, {"meta": "m2"}],
        template_name="custom",
    )
    assert collection[0].reformated == (
        "first\nImportant Context 1: value1\nImportant Context 2: \nMeta: m1 (conversation 0)"
    )
    assert collection[1].reformated.endswith(
        "Important Context 2: value2\nMeta: m2 (conversation 1)"
    )
    assert Prompt(None, "hello", template_name="plain").reformated == "USER SAYS: hello"
    assert available_templates()["plain"] == folder / "plain.j2"


def test_raw_templates_render_the_whole_prompt() -> None:
    prompt = Prompt("Be brief.", "Hi!", context={"topic": "greetings"}, template_name="chatml.raw")
    assert prompt.raw is True
    assert prompt.reformated == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!\n\ntopic: greetings"
        "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_template_mistakes_are_one_line_errors(isolated_home: Path) -> None:
    folder = paths.user_dir("templates")
    folder.mkdir(parents=True)
    (folder / "broken.j2").write_text("line one\n{{ user_prompt }\n")
    with pytest.raises(ez.UserFileError, match=r"broken.j2:2: unexpected '}'"):
        Prompt(None, "x", template_name="broken")
    with pytest.raises(ez.UnknownNameError, match="unknown template 'nope': choose one of"):
        Prompt(None, "x", template_name="nope")
