"""``auto`` for a GGUF without a chat template, and the warning for a format whose markers are
not the model's special tokens: on the table, on both real model files, and in ``ezchat info``."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import run

import ezchat as ez
from ezchat.chat import formats
from ezchat.chat.auto_format import FORMAT_RULES, marker_warning, markers, pick
from ezchat.engine.gguf import read_gguf, special_tokens


def test_every_rule_names_a_shipped_format() -> None:
    shipped = set(formats.available())
    assert {name for _, _, name in FORMAT_RULES} <= shipped


@pytest.mark.parametrize(
    ("metadata", "special", "expected", "why"),
    [
        ({"general.architecture": "gemma3", "general.name": "Gemma 3 270m"}, (), "gemma3",
         "from the model's architecture (gemma3)"),
        ({"general.architecture": "llama", "general.name": "Meta Llama 3.1 8B Instruct"}, (),
         "llama3", "from the model's name (Meta Llama 3.1 8B Instruct)"),
        ({"general.architecture": "phi3", "general.name": "Phi 4"}, (), "phi4", "name"),
        ({"general.architecture": "phi3", "general.name": "Phi 3 Mini"}, (), "phi3", "name"),
        ({"general.architecture": "qwen2", "general.name": "DeepSeek R1 Distill Qwen 7B"}, (),
         "deepseek_v3", "name"),
        ({"general.architecture": "qwen3", "general.name": "Some Finetune"}, (), "qwen3",
         "architecture"),
        ({"general.architecture": "qwen2", "general.name": "Foo"}, (), "qwen", "architecture"),
        ({"general.architecture": "llama", "general.name": "Mistral 7B Instruct v0.3"}, (),
         "mistral_instruct", "name"),
        ({"general.architecture": "granite", "general.name": "x"}, (), "granite3", "architecture"),
        ({"general.architecture": "llama", "general.name": "SmolLM2 135M"}, (), "smollm2", "name"),
        ({"general.architecture": "llama", "general.name": "x"}, {"<|eot_id|>"}, "llama3",
         "from the model's vocabulary (it has <|eot_id|> as a token)"),
        ({"general.architecture": "rwkv7", "general.name": "x"}, (), "chatml", "the fallback"),
    ],
)  # fmt: skip
def test_pick_follows_the_table(metadata, special, expected: str, why: str) -> None:
    name, reason = pick(metadata, "", special)
    assert name == expected
    assert why in reason and "\n" not in reason


def test_a_file_name_settles_a_model_with_no_name() -> None:
    name, reason = pick({"general.architecture": "llama"}, "Llama-3.2-1B.Q4_K_M.gguf")
    assert (name, reason) == ("llama3", "from the model's file name (Llama-3.2-1B.Q4_K_M.gguf)")


@pytest.mark.slow
def test_special_tokens_of_both_real_files(model_path: Path, second_model_path: Path) -> None:
    smol, gemma = special_tokens(model_path), special_tokens(second_model_path)
    assert {"<|im_start|>", "<|im_end|>"} <= smol and "<start_of_turn>" not in smol
    assert {"<start_of_turn>", "<end_of_turn>"} <= gemma and "<|im_start|>" not in gemma
    # the token table is the file's own: every special token is in its vocabulary
    vocab = read_gguf(second_model_path, full_arrays=["tokenizer.ggml.tokens"]).metadata
    assert gemma <= set(vocab["tokenizer.ggml.tokens"])


def test_marker_warning_names_the_foreign_markers(second_model_path: Path) -> None:
    gemma = special_tokens(second_model_path)
    chatml = formats.load("chatml")
    assert markers(chatml) == ["<|im_start|>", "<|im_end|>"]
    warning = marker_warning(chatml, gemma, "gemma3")
    assert warning is not None and "\n" not in warning
    assert warning.startswith("format chatml: <|im_start|>, <|im_end|> are not special tokens")
    assert warning.endswith("pick a format made for this model such as gemma3")
    assert marker_warning(formats.load("gemma3"), gemma) is None
    # Llama 2's <<SYS>> is text in its vocabulary, not a marker
    assert markers(formats.load("llama2chat")) == ["</s>", "<s>"]


@pytest.mark.slow
def test_thread_auto_on_the_second_model(second_model: ez.Model) -> None:
    thread = ez.Thread(second_model, "auto")
    choice = thread.format_choice
    assert thread.format.name == "gemma3" and choice.warning is None
    assert choice.summary == (
        "gemma3, from the model's architecture (gemma3); the file has no chat template"
    )
    thread.set_format("chatml")
    assert thread.format_choice.reason is None
    assert "<|im_start|>, <|im_end|> are not special tokens" in thread.format_choice.warning
    assert thread.format_choice.warning.endswith("such as gemma3")


def test_thread_auto_on_the_default_model(model: ez.Model) -> None:
    thread = ez.Thread(model, "auto")
    assert thread.format_choice.summary == "auto, the model's own chat template"
    assert thread.format_choice.warning is None
    thread.set_format("gemma3")
    assert "<start_of_turn>, <end_of_turn> are not special tokens" in (
        thread.format_choice.warning or ""
    )
    assert thread.format_choice.warning.endswith("such as auto, its own chat template")


def _facts(output: str) -> dict[str, str]:
    facts = {}
    for line in output.split("\n\n")[0].splitlines()[2:]:
        key, _, value = line.partition("  ")
        facts[key] = value.strip()
    return facts


def test_info_says_which_format_auto_picks(second_model_path: Path, model_path: Path) -> None:
    result = run("info", "--no-metadata", "-m", str(second_model_path))
    assert result.exit_code == 0, result.output
    facts = _facts(result.stdout)
    assert facts["chat template"] == "no"
    assert facts["format (auto)"] == (
        "gemma3, from the model's architecture (gemma3); the file has no chat template"
    )
    assert "format warning" not in facts
    facts = _facts(run("info", "--no-metadata", "-m", str(model_path)).stdout)
    assert facts["format (auto)"] == "auto, the model's own chat template"
