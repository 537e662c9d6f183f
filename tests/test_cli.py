"""The ``ezchat`` command run as a user runs it: typer's runner in-process, and ``python -m
ezchat`` in a subprocess, against the real default model with greedy sampling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
from cli_support import run_ezchat
from gates import ProcessHold
from typer.testing import CliRunner

import ezchat as ez
from ezchat.chat import formats, samplers
from ezchat.cli.app import app
from ezchat.engine import cpu
from ezchat.errors import EzChatError
from ezchat.session import ChatOptions
from ezchat.settings import paths
from ezchat.settings.config import config_path, load_config

ROOT = Path(__file__).resolve().parent.parent
GREEDY = ["-s", "GreedyDecoding", "-c", "2048", "--seed", "1234"]
QUESTION = "What is the capital of France?"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def assert_usage_error(result, *fragments: str) -> None:
    """One line on stderr naming the problem, exit status 2, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ezchat: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


ezchat = run_ezchat


# --- help, version --------------------------------------------------------------------------------


COMMANDS = ["chat", "generate", "candidates", "info", "prompt", "formats", "samplers", "config"]
SUBCOMMANDS = ["formats show", "samplers show", "config set", "config path"]
SHARED_OPTIONS = ["--model", "--format", "--sampler", "--system", "--context-length"]
SHARED_OPTIONS += ["--n-gpu-layers", "--flash-attn", "--threads", "--seed"]


def test_version_and_help() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"ezchat {ez.__version__}\n"
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command}" in result.stdout
    for option in [*SHARED_OPTIONS, "--resume", "--server", "--install-completion"]:
        assert option in result.stdout


@pytest.mark.parametrize("command", [c.split() for c in COMMANDS + SUBCOMMANDS])
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: ezchat {' '.join(command)}")


# --- generate -------------------------------------------------------------------------------------


def test_generate_streams_the_greedy_completion(model: ez.Model) -> None:
    prompt = "The capital of France is"
    sampler = samplers.load("GreedyDecoding").replace(max_len_tokens=12)
    expected = model.generate(prompt, sampler=sampler)
    result = run("generate", prompt, "-n", "12", *GREEDY)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"
    assert expected.strip()


def test_generate_json_has_the_text_token_counts_and_timings(model: ez.Model) -> None:
    prompt = "The capital of France is"
    result = run("generate", prompt, "-n", "12", "--json", *GREEDY)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sampler = samplers.load("GreedyDecoding").replace(max_len_tokens=12)
    assert data["text"] == model.generate(prompt, sampler=sampler)
    assert data["generated_tokens"] == 12 and data["stop_reason"] == "length"
    assert data["prompt_tokens"] == len(model.tokenize(prompt))
    assert data["prompt_tokens_evaluated"] == data["prompt_tokens"]
    assert data["decode_seconds"] > 0 and data["tokens_per_second"] > 0
    assert Path(data["model"]) == ez.default_model_path()


def test_generate_with_format_wraps_the_prompt_as_a_user_turn(
    model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    expected = ez.Thread(model, "chatml", greedy).send(QUESTION)
    result = run("generate", QUESTION, "-f", "chatml", "-n", "48", *GREEDY)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"
    assert "<|im_end|>" not in result.stdout  # the format's stop ended it


def test_generate_reads_the_prompt_from_stdin(model: ez.Model) -> None:
    prompt = "Once upon a time"
    sampler = samplers.load("GreedyDecoding").replace(max_len_tokens=6)
    result = run("generate", "-", "-n", "6", *GREEDY, input=prompt)
    assert result.exit_code == 0, result.output
    assert result.stdout == model.generate(prompt, sampler=sampler) + "\n"
    assert_usage_error(run("generate", "-", input=""), "the prompt on stdin is empty")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["generate"], ["Missing argument 'PROMPT'", "see 'ezchat generate --help'"]),
        (["generate", "hi", "--frob"], ["No such option: --frob"]),
        (["generate", "hi", "-c", "abc"], ["'--context-length'", "integer"]),
        (["generate", "hi", "-c", "8"], ["'--context-length'", "16"]),
        (["generate", "hi", "-n", "0"], ["'--max-tokens'"]),
        (["generate", "hi", "-s", "Nope"], ["unknown sampler preset 'Nope'", "GreedyDecoding"]),
        (["-s", "Nope", "generate", "hi"], ["unknown sampler preset 'Nope'"]),
        (["generate", "hi", "-f", "nope"], ["unknown format 'nope'", "chatml"]),
        (["generate", "hi", "-m", "/no/such/model.gguf"], ["no such model file"]),
        (["generate", "hi", "-m", str(ROOT / "pyproject.toml")], ["not a GGUF model file"]),
        (["generate", "word " * 200, "-c", "64"], ["the prompt is", "context holds 64"]),
        (["bogus"], ["No such command 'bogus'"]),
        (["candidates", "hi", "-k", "0"], ["'-k'"]),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(run(*args), *fragments)


def test_a_malformed_config_file_is_one_line_and_exit_2() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("sampler = [\n", encoding="utf-8")
    assert_usage_error(run("generate", "hi"), str(path), "malformed TOML")
    path.write_text("context_length = 'big'\n", encoding="utf-8")
    assert_usage_error(run("chat"), f"{path}:1", "'context_length' must be int")


# --- candidates, info -----------------------------------------------------------------------------


def test_candidates_table_and_json(model: ez.Model) -> None:
    prompt = "The capital of France is"
    expected = model.candidates(prompt, 5)
    result = run("candidates", prompt, "-k", "5", "-c", "2048")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "token", "id", "probability"]
    assert len(lines) == 2 + 5
    for line, candidate, rank in zip(lines[2:], expected, range(1, 6), strict=True):
        assert line.startswith(f"{rank}  {candidate.text!r}")
        assert line.endswith(f"{candidate.id}  {candidate.probability:11.4f}")
    result = run("candidates", prompt, "-k", "5", "-c", "2048", "--json")
    data = json.loads(result.stdout)
    assert [row["id"] for row in data] == [c.id for c in expected]
    assert data[0]["probability"] == pytest.approx(expected[0].probability, rel=1e-3)


def test_candidates_with_a_format_use_the_chat_prompt(model: ez.Model) -> None:
    thread = ez.Thread(model, "chatml")
    thread.add_message("user", QUESTION)
    expected = model.candidates(thread.plan_prompt().tokens, 3)
    result = run("candidates", QUESTION, "-f", "chatml", "-k", "3", "-c", "2048", "--json")
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.stdout)] == [c.id for c in expected]


def test_info_shows_the_facts_and_the_metadata(model: ez.Model) -> None:
    result = run("info")
    assert result.exit_code == 0, result.output
    facts = {}
    for line in result.stdout.split("\n\n")[0].splitlines()[2:]:
        key, _, value = line.partition("  ")
        facts[key] = value.strip()
    assert facts["quantisation"] == model.quantization
    assert facts["native context"] == str(model.n_ctx_train)
    assert facts["layers"] == str(model.n_layer)
    assert facts["vocabulary"] == str(model.n_vocab)
    assert facts["architecture"] == model.gguf.architecture
    assert facts["parameters"].endswith(f"({model.gguf.n_params:,})")
    assert facts["chat template"].startswith("yes")
    assert float(facts["RoPE base"]) == model.rope_freq_base_train
    machine = result.stdout.split("\n\n")[1].splitlines()
    assert machine[0].split() == ["this", "machine", "value"]
    by_key = {line.split("  ")[0]: line for line in machine[2:]}
    assert f"{model.n_threads}: " in by_key["threads (default)"]
    assert "AVX" in by_key["llama.cpp build"] or not cpu.is_x86()
    metadata = result.stdout.split("\n\n")[2]
    assert metadata.splitlines()[0].split() == ["metadata", "key", "value"]
    assert "general.architecture" in metadata and "tokenizer.ggml.tokens" in metadata
    data = json.loads(run("info", "--json", "--no-metadata").stdout)
    assert data["facts"]["layers"] == model.n_layer and "metadata" not in data
    assert_usage_error(run("info", "-m", str(ROOT)), "is a folder")


# --- formats, samplers, prompt --------------------------------------------------------------------


def test_formats_and_samplers_list_names_and_sources() -> None:
    user_formats = paths.user_dir("formats")
    user_formats.mkdir(parents=True)
    (user_formats / "mine.toml").write_text('description = "my own"\nuser_prefix = "U: "\n')
    result = run("formats")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[2:]}
    assert set(rows) == set(formats.available())
    assert rows["chatml"] == "shipped" and rows["mine"] == "user"
    result = run("samplers", "--json")
    data = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(data) == set(samplers.available())
    assert data["GreedyDecoding"]["description"] == samplers.description("GreedyDecoding")


def test_a_broken_preset_is_listed_with_its_whole_reason() -> None:
    """The reason names the file, line and key; cutting it to the column's width hid both."""
    folder = paths.user_dir("samplers")
    folder.mkdir(parents=True)
    (folder / "BadSyntax.toml").write_text('description = "broken"\ntop_p = 0.9\ntemp = = 1\n')
    try:
        samplers.description("BadSyntax")
    except EzChatError as error:
        reason = str(error)
    result = run("samplers")
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("BadSyntax ")]
    assert row.endswith(f"(broken: {reason})")
    assert "line 3" in row


def test_show_prints_the_file() -> None:
    result = run("formats", "show", "chatml")
    assert result.exit_code == 0
    assert result.stdout == (paths.shipped_dir("formats") / "chatml.toml").read_text()
    result = run("samplers", "show", "GreedyDecoding")
    assert result.stdout == (paths.shipped_dir("samplers") / "GreedyDecoding.toml").read_text()
    assert_usage_error(run("samplers", "show", "Nope"), "unknown sampler preset 'Nope'")


def test_prompt_prints_the_exact_prompt_text(tmp_path: Path, model: ez.Model) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages), encoding="utf-8")
    result = run("prompt", str(path), "-f", "llama3")
    assert result.exit_code == 0, result.output
    assert result.stdout == formats.load("llama3").render(messages)
    result = run("prompt", str(path), "-f", "chatml", "--no-generation-prompt")
    assert result.stdout == formats.load("chatml").render(messages, add_generation_prompt=False)
    # Without --format: the model's own template, as a chat with that model would use
    result = run("prompt", "-", input=json.dumps({"messages": messages}))
    assert result.exit_code == 0, result.output
    assert result.stdout == ez.Thread(model, "auto").format.render(messages)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[{"role": "user", "content": "hi"}', "malformed JSON"),
        ('{"chat": []}', 'expected a list of {"role", "content"} objects'),
        ('[{"role": "dog", "content": "hi"}]', "message 1: unknown role 'dog'"),
        ('[{"role": "user"}]', 'message 1 needs a "role" and a "content" string'),
    ],
)
def test_prompt_refuses_bad_messages_json(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    assert_usage_error(run("prompt", str(path), "-f", "chatml"), str(path), fragment)
    assert_usage_error(run("prompt", str(tmp_path / "none.json")), "no such file")


# --- config ---------------------------------------------------------------------------------------


def test_config_path_show_set_unset(model_path: Path) -> None:
    result = run("config", "path")
    assert result.stdout == f"{config_path()}\n"
    assert run("config", "set", "sampler", "GreedyDecoding").exit_code == 0
    assert run("config", "set", "flash_attn", "yes").exit_code == 0
    assert run("config", "set", "context_length", "1024").exit_code == 0
    assert run("config", "set", "model", str(model_path)).exit_code == 0
    config = load_config()
    assert config.sampler == "GreedyDecoding"
    assert config.flash_attn is True and config.context_length == 1024
    assert config.model == str(model_path.resolve())
    shown = run("config", "show").stdout.splitlines()
    assert "sampler = GreedyDecoding" in shown and "theme = (default)" in shown
    assert run("config", "unset", "sampler").exit_code == 0
    assert load_config().sampler is None
    # The settings apply to every command
    options = ChatOptions().with_config()
    assert options.context_length == 1024 and options.flash_attn is True


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["set", "nope", "1"], "unknown setting 'nope'; choose one of model, format"),
        (["set", "flash_attn", "maybe"], "flash_attn must be true or false"),
        (["set", "context_length", "big"], "context_length must be a whole number"),
        (["set", "context_length", "8"], "context_length must be at least 16"),
        (["set", "sampler", "Nope"], "unknown sampler preset 'Nope'"),
        (["set", "format", "nope"], "unknown format 'nope'"),
        (["set", "model", "/no/such.gguf"], "no such model file"),
        (["set", "keymap", "x"], "keymap is a table; edit it in"),
        (["unset", "nope"], "unknown setting 'nope'"),
    ],
)
def test_config_errors(args: list[str], fragment: str) -> None:
    assert_usage_error(run("config", *args), fragment)
    assert not config_path().exists()  # nothing was written


# --- chat and the app -----------------------------------------------------------------------------


def test_chat_reads_piped_lines_and_prints_plain_text(model: ez.Model, greedy) -> None:
    expected = ez.Thread(model, "chatml", greedy).send(QUESTION)
    keys = f"{QUESTION}\n!undo\n"
    result = run("chat", "-f", "chatml", *GREEDY, input=keys)
    assert result.exit_code == 0, result.output
    header, reply, note, end = result.stdout.split("\n", 3)
    assert header.startswith(f"{model.name} ({model.quantization}), context 2048, format chatml")
    assert expected.startswith(reply)  # greedy; the first line of the reply
    assert note.startswith("(removed the bot message:")
    assert "\x1b" not in result.stdout  # piped output is plain


@pytest.mark.slow
def test_text_that_is_not_utf8_is_refused_in_one_line(model: ez.Model, greedy) -> None:
    """It was a UnicodeEncodeError traceback from the tokenizer, in generate and in chat."""
    stdin = run("generate", "-", input=b"bad \xff\n")
    assert_usage_error(stdin, "stdin: byte offset 4 is 0xff, which is not UTF-8 text", "iconv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["generate", b"bad \xe9t\xe9"], ["chat", "--system", b"caf\xe9"]):
        done = subprocess.run(
            [sys.executable, "-m", "ezchat", *args], cwd=ROOT, env=env, capture_output=True
        )
        assert done.returncode == 2, done
        where = "the PROMPT argument: byte offset 4" if args[0] == "generate" else "--system"
        assert done.stderr.decode().startswith(f"ezchat: error: {where}")
        assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr

    messages = '[{"role": "user", "content": "half \\ud800"}]'
    assert_usage_error(
        run("prompt", "-", "-f", "chatml", input=messages),
        "stdin: message 1: \\ud800 is half of a UTF-16 surrogate pair",
    )

    # In the chat a line that is not UTF-8 is refused alone, and the chat goes on.
    expected = ez.Thread(model, "chatml", greedy).send(QUESTION)
    keys = f"bad \xff\n{QUESTION}\n".encode("latin-1")
    result = run("chat", "-f", "chatml", *GREEDY, input=keys)
    assert result.exit_code == 0, result.output
    _header, error, reply = result.stdout.split("\n")[:3]
    assert error == (
        "error: stdin line 1: byte offset 4 is 0xff, which is not UTF-8 text; convert it to "
        "UTF-8, e.g. with iconv -f latin1 -t utf-8"
    )
    assert expected.startswith(reply)


def test_bare_command_opens_the_app_with_the_options(
    monkeypatch: pytest.MonkeyPatch, model_path: Path
) -> None:
    """``ezchat MODEL.gguf`` hands the options to the app (stood in for here by a recorder)."""
    calls = []
    package = types.ModuleType("ezchat.tui")
    module = types.ModuleType("ezchat.tui.app")
    module.run_app = lambda options, resume=False, **_: calls.append((options, resume))
    package.app = module
    monkeypatch.setitem(sys.modules, "ezchat.tui", package)
    monkeypatch.setitem(sys.modules, "ezchat.tui.app", module)

    result = run(str(model_path), "--resume", "-s", "GreedyDecoding", "--server", "http://h:1/v1")
    assert result.exit_code == 0, result.output
    ((options, resume),) = calls
    assert resume is True
    assert options.sampler == "GreedyDecoding" and options.server == "http://h:1/v1"
    assert Path(options.model) == model_path

    result = run("-c", "1024", "--system", "Be brief.")
    assert result.exit_code == 0, result.output
    options, resume = calls[-1]
    assert resume is False and options.context_length == 1024 and options.system == "Be brief."
    assert Path(options.model) == model_path  # the bundled default
    assert_usage_error(run("-m", "/no/such.gguf"), "no such model file")


def test_bare_command_without_the_app_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if it were not installed. Both names: the TUI tests import ezchat.tui.app at collection.
    monkeypatch.setitem(sys.modules, "ezchat.tui", None)
    monkeypatch.setitem(sys.modules, "ezchat.tui.app", None)
    assert_usage_error(run(), "the full-screen app (ezchat.tui) is not part of this install")


def test_bare_command_with_a_keymap_value_of_the_wrong_type() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[keymap]\nreroll = 5\n")
    assert_usage_error(run(), f"{path}:2: [keymap] reroll must be a string of keys", "not int")


def test_a_context_too_large_is_one_line_with_the_size_it_needs() -> None:
    result = run("generate", "hi", "-c", "99999999999999")
    assert_usage_error(result, "a context of 99,999,999,999,999 tokens is too large", "PiB")


def test_bare_command_without_a_terminal_says_so() -> None:
    """``echo hi | ezchat``: the app would draw into the pipe until killed."""
    done = ezchat(input="hi\n", timeout=60)
    assert done.returncode == 2, done
    assert done.stderr == (
        "ezchat: error: the full-screen app needs a terminal, and stdin is not one; for piped "
        "text use 'ezchat generate -' (one prompt) or 'ezchat chat' (a chat, line by line)\n"
    )
    assert done.stdout == ""


# --- as a program ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_python_m_ezchat_runs_and_errors_without_traceback() -> None:
    done = ezchat("--version")
    assert done.returncode == 0 and done.stdout == f"ezchat {ez.__version__}\n"
    done = ezchat("generate", "hi", "-m", "/no/such/model.gguf")
    assert done.returncode == 2
    assert done.stderr == (
        "ezchat: error: /no/such/model.gguf: no such model file; check the path or set "
        "EZCHAT_MODEL\n"
    )
    done = ezchat("generate", "hi", "--threads", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "'--threads'" in done.stderr


@pytest.mark.slow
def test_ctrl_c_during_generate_exits_130(tmp_path: Path) -> None:
    gate = ProcessHold(tmp_path / "gate", "token", 8)  # Ctrl-C comes with 8 tokens out
    env = {**os.environ, "PYTHONPATH": str(ROOT), **gate.env}
    process = subprocess.Popen(
        [sys.executable, "-m", "ezchat", "generate", "A long story:", "-n", "2000", *GREEDY],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert gate.wait_held(process) == "token 8"
        process.send_signal(signal.SIGINT)
        gate.release(process)
        out, err = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
    assert out.strip()  # the story so far
    assert process.returncode == 130
    assert out.endswith(b"\n")
    assert err.decode() == "ezchat: interrupted\n"


def test_a_slow_load_shows_a_bar_on_a_terminal_and_none_elsewhere(model_path) -> None:
    import io

    from rich.console import Console

    from ezchat.cli.loadbar import load_model_showing_progress

    options = ChatOptions(model=model_path, context_length=256)
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=80)
    loaded = load_model_showing_progress(options, console, after_seconds=0.0)
    assert loaded.context_length == 256
    drawn = terminal.getvalue()
    assert f"Loading {model_path.name}" in drawn and "100%" in drawn

    piped = io.StringIO()
    load_model_showing_progress(options, Console(file=piped), after_seconds=0.0)
    assert piped.getvalue() == ""  # not a terminal: no bar in a log or a pipe
