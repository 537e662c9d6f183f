"""A chat template from a GGUF or a format file is bounded in time and memory from its compile
on: loading a model never compiles it outside the bound, and the operations that build a huge
value in one call are refused in one line before they run. Memory cases run the real CLI
under an address-space limit (``ulimit -v``) far below what the template asks for."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest
from cli_support import one_error_line, run_ezchat
from gguf_craft import craft_gguf
from hostile_servers import TEMPLATE_PROPS, hostile_server

import ezchat as ez
from ezchat.chat import formats
from ezchat.errors import TemplateLimitError
from ezchat.safetext import visible
from ezchat.settings import paths

# Jinja folds constant filters while it compiles: wordwrap(2) cuts a 3M-character run of spaces
# two characters at a time, copying the rest each time (hours).
WRAP_FOR_HOURS = "{{ 'a b'|center(3000000)|wordwrap(2) }}"
CENTER_GIGABYTES = "{{ 'x'|center(1500000000) }}"
# What ezchat takes with the model loaded is under 1 GiB; each template below asks for more
# than this limit in one call.
ADDRESS_SPACE = 1400 * 2**20
TOO_LARGE = "8,000,000 characters"


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def ezchat_limited(*args: str) -> Any:
    return run_ezchat(*args, timeout=60, preexec_fn=limited_memory)


@pytest.fixture(scope="module")
def gguf_with(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("templates")
    made: dict[str, Path] = {}

    def make(name: str, template: str) -> Path:
        if name not in made:
            made[name] = craft_gguf(
                ez.default_model_path(),
                folder / f"{name}.gguf",
                {"tokenizer.chat_template": template},
            )
        return made[name]

    return make


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([{"role": "user", "content": "Hello"}]), encoding="utf-8")
    return path


def write_config(text: str) -> None:
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")


def write_format(name: str, template: str) -> Path:
    folder = paths.config_dir() / "formats"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(f"template = {json.dumps(template)}\n", encoding="utf-8")
    return path


# --- loading a model whose template runs for hours or asks for gigabytes -------------------------


def test_a_model_loads_without_compiling_its_gguf_template(gguf_with, model: ez.Model) -> None:
    loaded = ez.Model(gguf_with("wrap", WRAP_FOR_HOURS), context_length=256)
    try:
        assert loaded.metadata["tokenizer.chat_template"] == WRAP_FOR_HOURS
        assert loaded.tokenize("Hello there") == model.tokenize("Hello there")
    finally:
        loaded.unload()


def test_generate_with_another_format_never_runs_the_gguf_template(gguf_with) -> None:
    done = ezchat_limited(
        "generate", "-m", str(gguf_with("wrap", WRAP_FOR_HOURS)), "-f", "chatml", "-n", "4",
        "-s", "GreedyDecoding", "Hello",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and not done.stderr


def test_a_gguf_template_that_runs_past_the_limit_while_compiling_is_one_line(
    gguf_with, chat_file: Path
) -> None:
    write_config("template_timeout = 0.3\n")
    done = run_ezchat("prompt", "-m", str(gguf_with("wrap", WRAP_FOR_HOURS)), str(chat_file))
    one_error_line(done, "format 'auto' from model metadata", "0.3 s", "template_timeout")


def test_a_gguf_template_that_asks_for_gigabytes_is_one_line(gguf_with, chat_file: Path) -> None:
    done = ezchat_limited(
        "prompt", "-m", str(gguf_with("center", CENTER_GIGABYTES)), str(chat_file)
    )
    one_error_line(done, "format 'auto' from model metadata", TOO_LARGE, "fix the template")


# --- one call that builds a huge value ---------------------------------------------------------

HUGE_IN_ONE_CALL = {
    "center": CENTER_GIGABYTES,
    "percent-width": "{{ '%1500000000s' % 'a' }}",
    "format-width": "{{ '{:>1500000000}'.format('a') }}",
    "str-center": "{{ 'x'.center(1500000000) }}",
    "tojson-indent": "{{ [[[[1]]]]|tojson(indent=400000000) }}",
    "join": "{% set a = 'x' * 7999999 %}{{ ([a] * 300)|join }}",
    "printed-list": "{% set a = 'x' * 7999999 %}{{ [a] * 300 }}",
    "concat": "{% set a = 'x' * 7999999 %}{% set b = a ~ a ~ a ~ a %}{{ b|length }}",
    "plus": "{% set a = 'x' * 7999999 %}{% set b = a + a + a + a %}{{ b|length }}",
    "replace": "{% set a = 'x' * 7999999 %}{{ a|replace('x', a) }}",
    "batch-fill": "{{ ([1]|batch(1500000000, 'x'))|list|length }}",
}


@pytest.mark.parametrize("template", HUGE_IN_ONE_CALL.values(), ids=HUGE_IN_ONE_CALL.keys())
def test_a_value_too_large_for_memory_is_refused_before_it_is_built(
    template: str, chat_file: Path
) -> None:
    path = write_format("huge", template)
    done = ezchat_limited("prompt", "-f", "huge", str(chat_file))
    one_error_line(done, "format 'huge'", str(path), TOO_LARGE)


def test_a_number_squared_past_any_use_is_refused() -> None:
    with pytest.raises(TemplateLimitError) as refused:
        formats.from_jinja("{{ (((10**64)**64)**64)**64 }}", name="power")
    assert "100,000 bits" in str(refused.value)


def test_a_template_that_grows_memory_in_a_loop_is_refused_at_the_memory_limit(
    chat_file: Path,
) -> None:
    write_config("template_memory_mb = 64\n")
    path = write_format(
        "grows",
        "{% set a = 'x' * 1000000 %}{% set kept = [] %}"
        "{% for i in range(99999) %}{% set _ = kept.append(a ~ i) %}{% endfor %}",
    )
    done = ezchat_limited("prompt", "-f", "grows", str(chat_file))
    one_error_line(done, "format 'grows'", str(path), "64 MiB", "template_memory_mb")


def test_a_format_template_folded_while_compiling_is_bounded_in_time(chat_file: Path) -> None:
    write_config("template_timeout = 0.3\n")
    write_format("wrap", WRAP_FOR_HOURS)
    done = run_ezchat("prompt", "-f", "wrap", str(chat_file), timeout=60)
    one_error_line(done, "format 'wrap'", "0.3 s", "template_timeout")


@pytest.mark.parametrize("value", ["0", "-1", '"lots"', "true"])
def test_a_bad_template_memory_limit_in_config_is_named(value: str, chat_file: Path) -> None:
    write_config(f"template_memory_mb = {value}\n")
    done = run_ezchat("prompt", "-f", "chatml", str(chat_file), timeout=60)
    one_error_line(done, "template_memory_mb")


def test_real_templates_still_render_within_the_bounds() -> None:
    chat = [{"role": "user", "content": "Hello " * 1000}]
    for name in formats.available():
        assert "Hello" in formats.load(name).render(chat)


# --- a template's words on stderr ----------------------------------------------------------------

# raise_exception with a title, a screen clear and a clipboard write (OSC 52) in its message
RAISES_ESCAPES = "{{ raise_exception('\x1b]0;PWN\x07\x1b[2J\x1b]52;c;SklOSkE=\x07 x\ny') }}"


def assert_one_warning_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ezchat: warning: "), lines[0]
    assert "UserWarning" not in stderr and ".py" not in stderr
    return lines[0]


def assert_one_visible_warning(stderr: str) -> str:
    line = assert_one_warning_line(stderr)
    assert not set(line) & {"\x1b", "\x07", "\x9b"}, line
    assert visible("\x1b]52;c;SklOSkE=\x07 x y") in line
    return line


def test_a_gguf_templates_error_is_one_visible_warning_line(gguf_with, chat_file: Path) -> None:
    done = run_ezchat("prompt", "-m", str(gguf_with("raises", RAISES_ESCAPES)), str(chat_file))
    assert done.returncode == 0, done.stderr
    line = assert_one_visible_warning(done.stderr)
    assert "format 'auto' from model metadata" in line and "using chatml" in line
    assert "<|im_start|>user\nHello" in done.stdout


def test_a_format_files_template_error_is_one_visible_warning_line(chat_file: Path) -> None:
    path = write_format("raises", RAISES_ESCAPES)
    done = run_ezchat("prompt", "-f", "raises", str(chat_file))
    assert done.returncode == 0, done.stderr
    assert str(path) in assert_one_visible_warning(done.stderr)


def test_the_librarys_warning_of_a_template_error_holds_no_control_character() -> None:
    fmt = formats.from_jinja(RAISES_ESCAPES, name="raises")
    with pytest.warns(UserWarning) as caught:
        fmt.render([{"role": "user", "content": "Hello"}])
    message = str(caught[0].message)
    assert "\x1b" not in message and "\n" not in message
    assert visible("\x1b]0;PWN\x07") in message


# --- batch templates -----------------------------------------------------------------------------

NESTED_RANGES = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"


@pytest.fixture
def one_prompt(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "Hello"}\n', encoding="utf-8")
    return path


def test_a_batch_template_that_runs_for_hours_is_one_line(tmp_path: Path, one_prompt: Path) -> None:
    write_config("template_timeout = 0.3\n")
    template = tmp_path / "loops.j2"
    template.write_text(NESTED_RANGES + "{{ user_prompt }}", encoding="utf-8")
    done = run_ezchat(
        "batch", str(one_prompt), "-o", str(tmp_path / "out.jsonl"), "--template", str(template),
        timeout=60,
    )  # fmt: skip
    one_error_line(done, str(template), "0.3 s", "template_timeout")


def test_a_batch_template_that_asks_for_gigabytes_is_one_line(
    tmp_path: Path, one_prompt: Path
) -> None:
    template = tmp_path / "center.j2"
    template.write_text(CENTER_GIGABYTES + "{{ user_prompt }}", encoding="utf-8")
    done = ezchat_limited(
        "batch", str(one_prompt), "-o", str(tmp_path / "out.jsonl"), "--template", str(template)
    )
    one_error_line(done, str(template), TOO_LARGE)


def test_a_template_that_writes_half_a_surrogate_pair_is_one_warning_line(chat_file: Path) -> None:
    write_format("surrogate", "{{ '\\ud800' }}{{ messages[0].content }}")
    done = run_ezchat("prompt", "-f", "surrogate", str(chat_file))
    assert done.returncode == 0, done.stderr
    line = assert_one_warning_line(done.stderr)
    assert "\\ud800 is half of a UTF-16 surrogate pair" in line and "using chatml" in line
    assert done.stdout.startswith("<|im_start|>user\nHello<|im_end|>")


def test_the_repl_shows_a_gguf_templates_error_visibly(gguf_with) -> None:
    model = gguf_with("raises", RAISES_ESCAPES)
    done = run_ezchat("chat", "-m", str(model), "-s", "GreedyDecoding", input="Hello\n")
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    assert "\x1b]" not in shown and "\x07" not in shown
    assert visible("\x1b]52;c;SklOSkE=\x07") in shown


async def test_the_app_refuses_a_gguf_template_that_runs_for_hours_and_quits_on_q(
    tmp_path: Path, gguf_with
) -> None:
    from dataclasses import replace

    from tui_support import SIZE, make_app, wait_until

    from ezchat.chat import jinja_render
    from ezchat.tui.loading import LoadingScreen

    jinja_render.set_render_timeout(0.3)
    try:
        app = make_app(tmp_path / "chats.db")
        app.options = replace(app.options, model=gguf_with("wrap", WRAP_FOR_HOURS), format="auto")
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: getattr(app.screen, "failed", False), "the refusal")
            assert isinstance(app.screen, LoadingScreen)
            status = str(app.screen.query_one("#loading-status").render())
            assert "model metadata" in status and "0.3 s" in status
            await pilot.press("q")
        assert not app.is_running
    finally:
        jinja_render.set_render_timeout(jinja_render.DEFAULT_RENDER_SECONDS)


def test_a_servers_template_error_is_one_visible_warning_line(llama_server_url: str) -> None:
    with hostile_server(
        TEMPLATE_PROPS, llama_server_url, ("/props",), template=RAISES_ESCAPES
    ) as server:
        done = run_ezchat(
            "generate", "--server", server.url, "-f", "auto", "-n", "3", "-s", "GreedyDecoding",
            "Hello",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = assert_one_visible_warning(done.stderr)
    assert "format 'auto'" in line and "using chatml" in line
