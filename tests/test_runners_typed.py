"""Typed output: the output type becomes a grammar that constrains sampling, and replies parse
to values of the declared Python types (real model, greedy)."""

from __future__ import annotations

import json

import pytest

import ezchat as ez
from ezchat.runners import ChatRunner, OutputType, OutputTypeError, TypedOutputError


@pytest.fixture
def runner(model: ez.Model, greedy: ez.SamplerSettings) -> ChatRunner:
    return ChatRunner(model, sampler=greedy.replace(max_len_tokens=64), cache=False)


def test_schema_and_grammar_follow_the_spec() -> None:
    typed = OutputType({"age": "int", "units": str, "scores": "list[float]", "ok": bool})
    assert typed.schema == {
        "type": "object",
        "properties": {
            "age": {"type": "integer"},
            "units": {"type": "string"},
            "scores": {"type": "array", "items": {"type": "number"}},
            "ok": {"type": "boolean"},
        },
        "required": ["age", "units", "scores", "ok"],
        "additionalProperties": False,
    }
    root = next(line for line in typed.grammar.splitlines() if line.startswith("root ::="))
    # the fields come in the order the user wrote them
    assert (
        root.index("age-kv")
        < root.index("units-kv")
        < root.index("scores-kv")
        < root.index("ok-kv")
    )
    assert OutputType(list[int]).schema == {"type": "array", "items": {"type": "integer"}}
    assert OutputType(["str"]).schema == OutputType("list[str]").schema
    assert (
        OutputType("list[int, 3]").schema["maxItems"]
        == 3
        == OutputType(["int", 3]).schema["maxItems"]
    )
    assert OutputType.from_json('{"a": "bool"}').schema["properties"] == {"a": {"type": "boolean"}}
    assert OutputType.from_json("int").schema == {"type": "integer"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"age": "integr"}, "unknown output type 'integr' for 'age'"),
        ({}, "has no fields"),
        ("list[dict]", "unknown output type 'dict'"),
        ("list[int, 0]", "must be a whole number >= 1, not '0'"),
        (["int", "many"], "must be a whole number >= 1"),
        (dict, "unknown output type"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: object, message: str) -> None:
    with pytest.raises(OutputTypeError, match=message) as caught:
        OutputType(spec)
    assert isinstance(caught.value, ez.EzChatError)
    assert "\n" not in str(caught.value)


def test_parse_converts_and_refuses() -> None:
    typed = OutputType({"n": "int", "x": "float", "b": "bool", "s": "str", "l": "list[int]"})
    value = typed.parse('{"n": 3, "x": 2, "b": true, "s": "a\nb", "l": [1, 2]}')
    assert value == {"n": 3, "x": 2.0, "b": True, "s": "a\nb", "l": [1, 2]}
    assert type(value["x"]) is float
    with pytest.raises(TypedOutputError, match="stopped at max_len_tokens"):
        typed.parse('{"n": 3, "x', stop_reason="length")
    with pytest.raises(TypedOutputError, match="not of type integer"):
        typed.parse('{"n": true, "x": 1, "b": true, "s": "", "l": []}')


def _reply_is_json_of(response_text: str, value: object) -> None:
    assert json.loads(response_text, strict=False) == value


@pytest.mark.parametrize(
    ("prompt", "spec", "python_type"),
    [
        ("How old is the Eiffel tower in years?", "int", int),
        ("What is the value of pi?", "float", float),
        ("Is the sky blue?", "bool", bool),
        ("What is the capital of France?", "str", str),
    ],
)
def test_each_scalar_type_is_enforced(
    runner: ChatRunner, prompt: str, spec: str, python_type: type
) -> None:
    value = runner(prompt, output_type={"answer": spec})
    assert set(value) == {"answer"}
    assert type(value["answer"]) is python_type
    _reply_is_json_of(runner.last_responses[0].text, {"answer": value["answer"]})


def test_lists_and_several_fields(runner: ChatRunner) -> None:
    value = runner(
        "Name a city and its population.",
        output_type={"city": "str", "population": "int", "big": "bool"},
    )
    assert list(value) == ["city", "population", "big"]
    assert [type(v) for v in value.values()] == [str, int, bool]

    # A small model may never end a list by itself: list[T, N] holds it to N items.
    value = runner(
        "Give two colours and the first three prime numbers.",
        output_type={"colours": ["str", 2], "primes": "list[int, 3]", "weights": "list[float, 2]"},
    )
    assert 1 <= len(value["colours"]) <= 2 and all(type(c) is str for c in value["colours"])
    assert 1 <= len(value["primes"]) <= 3 and all(type(p) is int for p in value["primes"])
    assert len(value["weights"]) <= 2 and all(type(w) is float for w in value["weights"])


def test_a_list_of_prompts_gives_typed_values_in_order(runner: ChatRunner) -> None:
    prompts = ["Is fire hot?", "Is ice hot?", "Is the sun a star?"]
    values = runner(prompts, output_type={"answer": "bool"})
    assert len(values) == 3
    assert all(set(v) == {"answer"} and type(v["answer"]) is bool for v in values)
    assert [r.prompt.user_prompt for r in runner.last_responses] == prompts


def test_a_cut_off_reply_is_an_error_not_a_guess(model: ez.Model, greedy) -> None:
    tiny = ChatRunner(model, sampler=greedy.replace(max_len_tokens=3), cache=False)
    with pytest.raises(TypedOutputError, match="raise it"):
        tiny("Describe Paris.", output_type={"description": "str"})
    [values] = [tiny(["Describe Paris."], output_type={"description": "str"})]
    assert values == [None]
    assert "not complete JSON" in tiny.last_responses[0].error
