"""Typed output on seed-style questions: 30 prompts like the seed documents' examples ("How old
are you in years?" with ``{"age": "int", "units": "str"}``, ``{"response": "str",
"explanation": "str"}``, bare ``int``/``float``/``str``), on the real default model, greedy and
with the default sampler: every call returns values of the declared types.

The declared types are checked here by reading the spec again (``_check``), not through the
runner's own converter."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import ezchat as ez
from ezchat.runners import BasicModelRunner, BatchRunner, PromptCollection
from ezchat.runners.typed import DEFAULT_MAX_CHARS

SEED_QUESTIONS: list[tuple[str, Any]] = [
    ("How old are you in years?", {"age": "int"}),
    ("How old are you?", {"age": "int", "units": "str"}),
    ("How old are you in years?", {"age": "int", "units": "str"}),
    ("What is the meaning of life?", {"response": "str", "explanation": "str"}),
    ("What is the hottest day of the year?", {"response": "str", "explanation": "str"}),
    ("How are you?", "str"),
    ("How many continents are there?", "int"),
    ("What is the value of pi?", "float"),
    ("How tall is the Eiffel Tower in meters?", {"height": "float", "units": "str"}),
    ("What is the boiling point of water in Celsius?", {"temperature": "float"}),
    ("How many legs does a spider have?", {"legs": "int"}),
    ("What year did the Second World War end?", {"year": "int"}),
    ("What is the capital of France?", {"capital": "str"}),
    ("Is the Earth flat?", {"answer": "bool", "explanation": "str"}),
    ("How many days are in a leap year?", {"days": "int", "units": "str"}),
    ("What is the population of Tokyo?", {"city": "str", "population": "int"}),
    ("How much does a cup of coffee cost?", {"price": "float", "currency": "str"}),
    ("Name three primary colours.", {"colours": "list[str, 3]"}),
    ("What are the first five prime numbers?", {"primes": "list[int, 5]"}),
    ("How far is the Moon from the Earth?", {"distance": "float", "units": "str"}),
    ("Who wrote Romeo and Juliet, and when?", {"author": "str", "year": "int"}),
    ("What is your favourite food and why?", {"food": "str", "reason": "str"}),
    ("How many hours of sleep does an adult need?", {"hours": "float", "explanation": "str"}),
    ("What is 12 times 12?", {"answer": "int"}),
    ("Is water wet?", {"answer": "bool"}),
    ("What is the speed of light?", {"speed": "float", "units": "str"}),
    ("Tell me about Paris.", {"city": {"name": "str", "country": "str"}, "population": "int"}),
    ("What is the weather like today?", {"summary": "str", "celsius": "float", "sunny": "bool"}),
    (
        "Describe your best friend.",
        {"name": "str[40]", "age": "int", "hobbies": "list[str[30], 3]"},
    ),
    ("Give me a fun fact.", {"fact": "str", "explanation": "str"}),
]
_PYTHON = {"int": int, "float": float, "bool": bool}


def _check(spec: Any, value: Any, where: str = "value") -> None:
    """``value`` is of the type ``spec`` declares (strings within their bound)."""
    if isinstance(spec, dict):
        assert type(value) is dict and list(value) == list(spec), where
        for key, sub in spec.items():
            _check(sub, value[key], f"{where}.{key}")
        return
    listed = re.fullmatch(r"list\[(.+), (\d+)\]", spec)
    if listed:
        assert type(value) is list and len(value) <= int(listed[2]), where
        for index, item in enumerate(value):
            _check(listed[1], item, f"{where}[{index}]")
        return
    string = re.fullmatch(r"str(?:\[(\d+)\])?", spec)
    if string:
        most = int(string[1]) if string[1] else DEFAULT_MAX_CHARS
        assert type(value) is str and len(value) <= most, where
        return
    assert type(value) is _PYTHON[spec], f"{where} is {value!r}, not {spec}"


def _by_type() -> dict[str, list[int]]:
    """Question indices grouped by output type, so each type is one list call."""
    groups: dict[str, list[int]] = {}
    for index, (_, spec) in enumerate(SEED_QUESTIONS):
        groups.setdefault(json.dumps(spec), []).append(index)
    return groups


def test_thirty_questions_in_the_seeds_style() -> None:
    assert len(SEED_QUESTIONS) == 30
    assert ("How old are you?", {"age": "int", "units": "str"}) in SEED_QUESTIONS


# The seed's own single calls; the rest of the 30 run as list calls, one llama.cpp batch per
# output type (the same grammar path, at a CI-friendly cost).
SINGLE_CALLS = 4


@pytest.mark.parametrize("sampler_name", ["GreedyDecoding", "DefaultSampling"])
@pytest.mark.slow
def test_every_seed_question_gives_the_declared_types(model: ez.Model, sampler_name: str) -> None:
    """The seed's questions as it calls them, ``llm.call(question, output_type=...)``, then
    all 30, each type's questions as one list call."""
    runner = BasicModelRunner(model, ez.samplers.load(sampler_name), cache=False)
    for question, spec in SEED_QUESTIONS[:SINGLE_CALLS]:
        value = runner.call(question, output_type=spec)
        _check(spec, value, question)
        [response] = runner.last_responses
        if not response.cut_off:
            assert json.loads(response.text, strict=False) == value
    for key, indices in _by_type().items():
        spec = json.loads(key)
        values = runner([SEED_QUESTIONS[i][0] for i in indices], output_type=spec)
        assert len(values) == len(indices)
        for value, response in zip(values, runner.last_responses, strict=True):
            _check(spec, value, response.prompt.user_prompt)
            assert response.ok and response.response_data["cut_off"] == response.cut_off


@pytest.mark.slow
def test_the_seed_batch_example_through_a_batch_runner(model: ez.Model) -> None:
    """The seed's "Bigger inference" call, as a PromptCollection through a BatchRunner."""
    spec = {"response": "str", "explanation": "str"}
    questions = ["How old are you?", "What is the meaning of life?", "What is the hottest day?"]
    collection = PromptCollection.create_prompts(None, questions, template_name="plain")
    runner = BatchRunner(model, ez.samplers.load("GreedyDecoding"), cache=False, progress=False)
    responses = runner.run(collection, output_type=spec)
    assert [r.prompt.user_prompt for r in responses] == questions
    for response in responses:
        assert response.ok
        _check(spec, response.value)
        assert response.response_data["value"] == response.value
