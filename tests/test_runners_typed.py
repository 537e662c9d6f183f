"""Typed output: the output type becomes a grammar that constrains sampling, and replies parse
to values of the declared Python types (real model, greedy); strings are bounded, the token
budget follows from the type, and a cut-off reply is closed and flagged."""

from __future__ import annotations

import json

import pytest

import ezchat as ez
from ezchat.runners import ChatRunner, OutputType, OutputTypeError, TypedOutputError
from ezchat.runners.typed import DEFAULT_MAX_CHARS


@pytest.fixture
def runner(model: ez.Model, greedy: ez.SamplerSettings) -> ChatRunner:
    return ChatRunner(model, sampler=greedy.replace(max_len_tokens=64), cache=False)


def test_schema_and_grammar_follow_the_spec() -> None:
    typed = OutputType({"age": "int", "units": str, "scores": "list[float]", "ok": bool})
    assert typed.schema == {
        "type": "object",
        "properties": {
            "age": {"type": "integer"},
            "units": {"type": "string", "maxLength": DEFAULT_MAX_CHARS},
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
    # str[N] overrides the default bound of a string, wherever a string goes
    assert OutputType("str[12]").schema == {"type": "string", "maxLength": 12}
    assert OutputType(["str[5]", 2]).schema["items"] == {"type": "string", "maxLength": 5}
    nested = OutputType("list[list[int, 2], 3]").schema
    assert nested["maxItems"] == 3 and nested["items"]["maxItems"] == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"age": "integr"}, "unknown output type 'integr' for 'age'"),
        ({}, "has no fields"),
        ("list[dict]", "unknown output type 'dict'"),
        ("list[int, 0]", "must be a whole number >= 1, not '0'"),
        ("str[0]", "the most characters of the output must be a whole number >= 1, not '0'"),
        ({"name": "str[many]"}, "the most characters of name must be a whole number"),
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
    with pytest.raises(TypedOutputError, match="not complete JSON"):
        typed.parse('{"n": 3, "x')
    with pytest.raises(TypedOutputError, match="not of type integer"):
        typed.parse('{"n": true, "x": 1, "b": true, "s": "", "l": []}')
    # read() closes what parse() refuses, and says so
    reply = typed.read('{"n": 3, "x', stop_reason="length")
    assert reply.cut_off and reply.value == {"n": 3, "x": 0.0, "b": False, "s": "", "l": []}
    assert json.loads(reply.json) == reply.value
    with pytest.raises(TypedOutputError, match="not JSON of the output type"):
        typed.read('{"m": 3', stop_reason="length")  # not what the grammar lets through


def test_the_token_budget_follows_from_the_type() -> None:
    # {"age": 25, "units": "years"}: braces, keys, colons, a comma, one optional space after
    # each, an integer of at most 17 characters and a string of at most DEFAULT_MAX_CHARS
    typed = OutputType({"age": "int", "units": "str"})
    assert typed.bounded
    longest = len('{ "age" : ') + 17 + len(' , "units" : "') + DEFAULT_MAX_CHARS + len('" } ')
    assert typed.longest == longest
    assert typed.token_budget(3) == typed.token_budget(4096) == longest
    assert OutputType({"name": "str[10]"}).longest == len('{ "name" : "" } ') + 10
    assert OutputType("list[bool, 3]").longest == len("[ ") + 3 * 6 + 2 * len(", ") + len("] ")
    # an unbounded list leaves the budget to the sampler, but never below the rest of the type
    open_list = OutputType({"tags": "list[str]", "note": "str[20]"})
    assert not open_list.bounded
    assert open_list.token_budget(3) == open_list.longest < open_list.token_budget(500) == 500


def test_the_grammar_rules_the_budget_counts_on() -> None:
    """The budget counts the lengths of llama-cpp-python's grammar rules: fail loudly if they
    change."""
    from llama_cpp import llama_grammar

    assert llama_grammar.SPACE_RULE == '" "?'
    rules = llama_grammar.PRIMITIVE_RULES
    assert rules["integral-part"].content.count("[0-9]") == 16
    assert rules["decimal-part"].content.count("[0-9]") == 16
    assert rules["integer"].content == '("-"? integral-part) space'
    assert rules["number"].content.startswith('("-"? integral-part) ("." decimal-part)? ([eE]')


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ("", '{"a": 0, "s": "", "l": [], "b": false}'),
        ('{"a": -', '{"a": 0, "s": "", "l": [], "b": false}'),
        ('{"a": 12.', '{"a": 12, "s": "", "l": [], "b": false}'),
        ('{"a": 1e-', '{"a": 1, "s": "", "l": [], "b": false}'),
        ('{"a": 1, "s', '{"a": 1, "s": "", "l": [], "b": false}'),
        ('{"a": 1, "s": "ab\\', '{"a": 1, "s": "ab", "l": [], "b": false}'),
        ('{"a": 1, "s": "ab\\u00', '{"a": 1, "s": "ab", "l": [], "b": false}'),
        ('{"a": 1, "s": "\\ud83d', '{"a": 1, "s": "", "l": [], "b": false}'),
        ('{"a": 1, "s": "x", "l": ["p", ', '{"a": 1, "s": "x", "l": ["p"], "b": false}'),
        ('{"a": 1, "s": "x", "l": ["p", "q', '{"a": 1, "s": "x", "l": ["p", "q"], "b": false}'),
        ('{"a": 1, "s": "x", "l": [], "b": t', '{"a": 1, "s": "x", "l": [], "b": true}'),
    ],
)
def test_a_cut_off_reply_is_closed_to_json_of_the_type(text: str, closed: str) -> None:
    typed = OutputType({"a": "float", "s": "str", "l": "list[str, 3]", "b": "bool"})
    reply = typed.read(text, stop_reason="length")
    assert reply.cut_off
    assert json.loads(reply.json) == json.loads(closed) == reply.value


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


@pytest.mark.slow
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


def test_a_small_max_len_tokens_does_not_cut_a_bounded_type(model: ez.Model, greedy) -> None:
    tiny = ChatRunner(model, sampler=greedy.replace(max_len_tokens=3), cache=False)
    value = tiny("Describe Paris.", output_type={"description": "str[40]"})
    [response] = tiny.last_responses
    assert response.completion_tokens > 3 and not response.cut_off
    assert type(value["description"]) is str and len(value["description"]) <= 40
    _reply_is_json_of(response.text, value)


@pytest.mark.slow
def test_a_cut_off_reply_is_closed_and_flagged(model: ez.Model, greedy, tmp_path) -> None:
    """An unbounded list takes the sampler's limit: a tiny one cuts the reply off."""
    spec = {"city": "str[20]", "sights": "list[str]"}
    tiny = ChatRunner(model, sampler=greedy.replace(max_len_tokens=3), cache=tmp_path / "c.db")
    budget = OutputType(spec).token_budget(3)
    value = tiny("List every sight of Paris.", output_type=spec)
    [response] = tiny.last_responses
    assert response.cut_off and response.ok and response.stop_reason == "length"
    assert response.completion_tokens == budget
    assert type(value["city"]) is str and all(type(sight) is str for sight in value["sights"])
    assert response.response_data["cut_off"] is True and response.response_data["value"] == value
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)  # the text stays what the model wrote

    # the same reply from the response cache is closed and flagged the same way, in a list call
    assert tiny(["List every sight of Paris."], output_type=spec) == [value]
    assert tiny.last_responses[0].cached and tiny.last_responses[0].cut_off


@pytest.mark.slow
def test_every_prefix_of_a_real_reply_closes_to_the_type(runner: ChatRunner) -> None:
    """Wherever a reply is cut, closing gives JSON of the type: every prefix of real replies."""
    specs = [
        {"name": "str[30]", "age": "int", "height": "float", "pets": "list[str[12], 2]"},
        {"city": {"name": "str[20]", "big": "bool"}, "scores": "list[float, 3]"},
    ]
    prompts = ["Describe a person.", "Describe a city."]
    for prompt, spec in zip(prompts, specs, strict=True):
        typed = OutputType(spec)
        full = runner(prompt, output_type=spec)
        text = runner.last_responses[0].text
        assert not runner.last_responses[0].cut_off and typed.parse(text) == full
        for end in range(len(text)):
            reply = typed.read(text[:end], stop_reason="length")
            assert reply.cut_off and typed.parse(reply.json) == reply.value
