"""BasicModelRunner and ChatRunner calls against the real model, greedy: strings, lists, data.

Comparisons with the core's own paths clear the model's prompt cache first, so each side
evaluates its prompt from scratch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ezchat as ez
from ezchat.runners import BasicModelRunner, ChatRunner


@pytest.fixture
def basic(model: ez.Model, greedy: ez.SamplerSettings) -> BasicModelRunner:
    return BasicModelRunner(model, greedy.replace(max_len_tokens=16), cache=False)


@pytest.fixture
def chat(model: ez.Model, greedy: ez.SamplerSettings) -> ChatRunner:
    return ChatRunner(model, sampler=greedy.replace(max_len_tokens=24), cache=False)


def test_string_in_string_out_is_a_raw_completion(basic: BasicModelRunner, model: ez.Model) -> None:
    text = "The capital of France is"
    reply = basic(text)
    assert isinstance(reply, str) and reply
    model.reset_cache()
    assert reply == model.generate(text, sampler=basic.sampler)
    assert basic.call(text) == reply


@pytest.mark.slow
def test_list_in_list_out_keeps_order(basic: BasicModelRunner) -> None:
    texts = ["The capital of France is", "One, two, three,", "def add(a, b):"]
    replies = basic(texts)
    assert isinstance(replies, list) and len(replies) == 3
    singles = []
    for text in texts:
        basic.model.reset_cache()
        singles.append(basic(text))
    assert replies == singles
    assert [r.prompt.user_prompt for r in basic.last_responses] == [texts[-1]]


@pytest.mark.slow
def test_chat_runner_uses_the_models_format_and_system_prompt(
    chat: ChatRunner, model: ez.Model
) -> None:
    question = "What is the capital of France?"
    thread = ez.Thread(model, "auto", chat.sampler)
    model.reset_cache()
    assert chat(question) == thread.send(question)

    pirate = ChatRunner(model, "You are a pirate. Say arr!", sampler=chat.sampler, cache=False)
    pirate_thread = ez.Thread(model, "auto", chat.sampler)
    pirate_thread.set_system_prompt("You are a pirate. Say arr!")
    model.reset_cache()
    reply = pirate(question)
    model.reset_cache()
    assert reply == pirate_thread.send(question)
    assert pirate.last_responses[0].prompt.sys_prompt == "You are a pirate. Say arr!"


@pytest.mark.slow
def test_loaded_examples_are_few_shot_turns(chat: ChatRunner, model: ez.Model) -> None:
    chat.load_data([{"input": "2+2", "output": "4"}, ("3+3", "6")])
    chat.load_data({"input": "5+5", "output": "10"})
    assert len(chat.examples) == 3
    thread = ez.Thread(model, "auto", chat.sampler)
    for question, answer in (("2+2", "4"), ("3+3", "6"), ("5+5", "10")):
        thread.add_message("user", question)
        thread.add_message("bot", answer)
    model.reset_cache()
    reply = chat("7+7")
    model.reset_cache()
    assert reply == thread.send("7+7")
    chat.clear_data()
    assert chat.examples == []


def test_basic_runner_puts_examples_before_the_prompt(basic: BasicModelRunner) -> None:
    basic.load_data([("cat", "chat"), ("dog", "chien")])
    basic("bird")
    prompt = basic.last_responses[0].prompt
    assert prompt.user_prompt == "bird"
    assert (
        prompt.reformated
        == "Input: cat\nOutput: chat\n\nInput: dog\nOutput: chien\n\nInput: bird\nOutput:"
    )


def test_load_data_from_files(chat: ChatRunner, tmp_path: Path) -> None:
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({"q": f"question {i}", "a": f"answer {i}"}) for i in range(3)) + "\n"
    )
    chat.load_data_from_jsonlines(jsonl, keys=["q", "a"])
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text('input,output\nhello,bonjour\n"a, b",c\n')
    chat.load_data_from_csv(csv_file)

    class Frame:  # what load_data_from_dataframe needs of a pandas DataFrame
        def to_dict(self, orient: str) -> list[dict]:
            assert orient == "records"
            return [{"text": "x", "label": "y"}]

    chat.load_data_from_dataframe(Frame(), columns=["text", "label"])
    assert [(e.input, e.output) for e in chat.examples] == [
        ("question 0", "answer 0"),
        ("question 1", "answer 1"),
        ("question 2", "answer 2"),
        ("hello", "bonjour"),
        ("a, b", "c"),
        ("x", "y"),
    ]


def test_bad_data_files_name_the_line(chat: ChatRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input": "a", "output": "b"}\n{oops\n')
    with pytest.raises(ez.UserFileError, match=r"broken.jsonl:2: not valid JSON"):
        chat.load_data_from_jsonlines(broken)
    no_column = tmp_path / "cols.csv"
    no_column.write_text("question,answer\nq,a\n")
    with pytest.raises(ez.UserFileError, match="no 'input' column; the header is question, answer"):
        chat.load_data_from_csv(no_column)
    assert chat.examples == []


def test_evaluate_runs_every_example(chat: ChatRunner) -> None:
    chat.load_data([("What is 2+2? Answer with a number only.", "4"), "Say hello."])
    rows = chat.evaluate()
    assert [row["input"] for row in rows] == [e.input for e in chat.examples]
    assert rows[1]["expected"] is None and rows[1]["match"] is False
    assert all(isinstance(row["output"], str) and row["output"] for row in rows)
    assert rows[0]["match"] == (rows[0]["output"].strip() == "4")
    assert len(chat.examples) == 2  # evaluate leaves the loaded data alone


def test_train_points_to_lora(chat: ChatRunner) -> None:
    with pytest.raises(ez.EzChatError, match="lora_path"):
        chat.train()


@pytest.mark.slow
def test_a_runner_loads_its_model_from_a_path(model_path: Path, greedy) -> None:
    runner = BasicModelRunner(model_path, greedy.replace(max_len_tokens=4), cache=False)
    try:
        assert runner.model.filename == str(model_path)
        assert isinstance(runner("Hello"), str)
    finally:
        runner.model.unload()
